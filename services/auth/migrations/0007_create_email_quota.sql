-- Emails an address can be sent on anyone's request (forgot password,
-- resend verification, signup) are counted per address and hour, so that
-- an inbox cannot be flooded (issue 12). The address is kept as its
-- SHA-256, like the login throttle's. Rows whose hour has passed are swept.
CREATE TABLE email_quota (
	address_hash bytea       PRIMARY KEY CHECK (length(address_hash) = 32),
	window_start timestamptz NOT NULL DEFAULT now(),
	sent         integer     NOT NULL DEFAULT 0 CHECK (sent >= 0)
);

CREATE INDEX email_quota_window_idx ON email_quota (window_start);
