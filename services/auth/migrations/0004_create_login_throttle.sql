-- Failed logins are counted per address, whether or not it has an account,
-- so that a lock-out says nothing about who is a customer. The address is
-- kept as its SHA-256: the table must not collect the addresses (or the
-- passwords typed into the email field by mistake) of strangers.
CREATE TABLE login_throttle (
	email_hash   bytea       PRIMARY KEY CHECK (length(email_hash) = 32),
	-- Attempts counted in the current window, the one in progress included:
	-- an attempt is counted before its password is checked, so parallel
	-- guesses cannot outrun the limit.
	failures     integer     NOT NULL DEFAULT 0 CHECK (failures >= 0),
	window_start timestamptz NOT NULL DEFAULT now(),
	-- Lock-outs so far: each one lasts twice as long as the previous.
	lockouts     integer     NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
	locked_until timestamptz
);
