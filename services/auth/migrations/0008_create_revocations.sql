-- Access tokens are verified offline by every service, so logging out,
-- changing a password or disabling an account left the tokens already
-- issued valid for their whole lifetime (issue 12). A revocation names a
-- session (the refresh family, the tokens' sid claim) or a whole account
-- (tokens issued before issued_before); verifiers poll the recent ones
-- (GET /internal/revocations). A row is needed only until expires_at, when
-- no token it could refuse is valid any more; then it is swept. No foreign
-- key: a deleted account's tokens stay revoked.
CREATE TABLE revocations (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id    uuid        NOT NULL,
	session_id    uuid,
	issued_before timestamptz NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	expires_at    timestamptz NOT NULL
);

CREATE INDEX revocations_created_idx ON revocations (created_at);
CREATE INDEX revocations_expires_idx ON revocations (expires_at);
