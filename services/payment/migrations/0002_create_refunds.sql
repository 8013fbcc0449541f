-- A refund gives back all or part of a captured payment. Like a payment it
-- is pending until the processor's answer is known, and its processor_key
-- (derived from its id) makes every attempt name the same refund.
CREATE TABLE refunds (
	id                  uuid        PRIMARY KEY,
	payment_id          uuid        NOT NULL REFERENCES payments (id),
	amount              bigint      NOT NULL CHECK (amount > 0),
	status              text        NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'succeeded', 'failed')),
	processor_key       text        NOT NULL UNIQUE,
	processor_reference text,
	failure_code        text,
	failure_message     text,
	attempts            integer     NOT NULL DEFAULT 1,
	last_attempt_at     timestamptz NOT NULL DEFAULT now(),
	next_check_at       timestamptz NOT NULL DEFAULT now(),
	created_at          timestamptz NOT NULL DEFAULT now(),
	updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at, id);
CREATE INDEX refunds_pending_idx ON refunds (next_check_at) WHERE status = 'pending';
