-- Without a configured signing key, the service generates one at first
-- start and keeps it here so that a restart does not log everyone out. One
-- row at most: concurrent first starts agree on whichever insert won. For
-- development only: production configures AUTH_SIGNING_KEY(_FILE).
CREATE TABLE dev_signing_key (
	singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
	seed       bytea       NOT NULL CHECK (length(seed) = 32),
	created_at timestamptz NOT NULL DEFAULT now()
);
