-- Refresh tokens are opaque and rotate: each use spends the token and
-- issues its successor in the same family (one family per login). Seeing a
-- spent token again means it was copied, so the whole family is revoked.
-- Only the SHA-256 of a token is kept.
CREATE TABLE refresh_tokens (
	hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
	family_id  uuid        NOT NULL,
	account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account_idx ON refresh_tokens (account_id);
