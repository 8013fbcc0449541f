-- Tokens sent by email (verify an address, reset a password) prove control
-- of a mailbox. Only their SHA-256 is kept, so a leak of this table cannot
-- be replayed; each is single use (used_at) and expires.
CREATE TABLE email_tokens (
	hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
	account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- A new token of a purpose replaces the account's unused ones.
CREATE INDEX email_tokens_account_idx ON email_tokens (account_id, purpose);
