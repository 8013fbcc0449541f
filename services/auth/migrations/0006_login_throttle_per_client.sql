-- Lock-outs used to be counted per address alone, so a stranger's five
-- wrong passwords locked the owner out (issue 12). Failures are now counted
-- per (address, client), per client and per address: key_hash is the
-- SHA-256 of what a row counts, and account_hash names the address a row is
-- about, so that a password reset lifts every client's lock on it. Rows
-- expire (expires_at) and are swept, so the table no longer grows with
-- every address ever tried. Counts kept under the old rule mean nothing
-- under the new one: they are dropped.
DELETE FROM login_throttle;
ALTER TABLE login_throttle RENAME COLUMN email_hash TO key_hash;
ALTER TABLE login_throttle
	ADD COLUMN account_hash bytea CHECK (length(account_hash) = 32),
	ADD COLUMN expires_at   timestamptz NOT NULL DEFAULT now() + interval '75 minutes';

CREATE INDEX login_throttle_account_idx ON login_throttle (account_hash);
CREATE INDEX login_throttle_expires_idx ON login_throttle (expires_at);
