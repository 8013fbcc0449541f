-- The callers' idempotency keys, one namespace for payments and refunds.
-- A key is claimed (inserted, with a lease in locked_until) in its own
-- committed transaction before the processor is called; the final answer
-- is stored with it, to be replayed. fingerprint is the SHA-256 of the
-- canonical request with the card number and CVC replaced by keyed hashes,
-- so the fingerprint cannot be brute-forced back into a card number.
--
-- No foreign keys: a key expires (after at least 24 hours) independently of
-- the payment it made, which lives on.
CREATE TABLE idempotency_keys (
	key             text        PRIMARY KEY CHECK (key <> '' AND length(key) <= 255),
	operation       text        NOT NULL CHECK (operation IN ('create_payment', 'create_refund')),
	fingerprint     bytea       NOT NULL CHECK (length(fingerprint) = 32),
	payment_id      uuid        NOT NULL,
	refund_id       uuid,
	-- claim_token names the request holding the key, so a request whose
	-- lease expired cannot overwrite the work of the one that took over.
	claim_token     uuid,
	locked_until    timestamptz,
	response_status smallint,
	response_body   text,
	created_at      timestamptz NOT NULL DEFAULT now(),
	completed_at    timestamptz,
	CHECK ((response_status IS NULL) = (response_body IS NULL))
);

-- The clean-up deletes keys past their retention, oldest first.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
-- The reconciler skips payments and refunds whose key is in flight.
CREATE INDEX idempotency_keys_payment_idx ON idempotency_keys (payment_id);
CREATE INDEX idempotency_keys_refund_idx ON idempotency_keys (refund_id) WHERE refund_id IS NOT NULL;
