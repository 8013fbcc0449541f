-- A payment is one charge of a card for one order. The card number and CVC
-- never reach this table: only what identifies the card to a person (brand,
-- last 4 digits, expiry). processor_key is the idempotency key sent to the
-- processor, derived from the payment id, so that every attempt of this
-- payment (a retry, the reconciler's question) names the same charge.
--
-- Refunded money is tracked in two columns so that a refund whose outcome is
-- unknown keeps its amount reserved: amount_refunded (succeeded refunds) +
-- refund_reserved (pending refunds) never exceeds amount, checked by the
-- database as a backstop to the conditional update that reserves it.
CREATE TABLE payments (
	id                  uuid        PRIMARY KEY,
	order_id            uuid        NOT NULL,
	amount              bigint      NOT NULL CHECK (amount > 0),
	currency            text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	status              text        NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'succeeded', 'failed', 'partially_refunded', 'refunded')),
	card_brand          text        NOT NULL,
	card_last4          text        NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
	card_exp_month      smallint    NOT NULL CHECK (card_exp_month BETWEEN 1 AND 12),
	card_exp_year       smallint    NOT NULL,
	processor_key       text        NOT NULL UNIQUE,
	processor_reference text,
	failure_code        text,
	failure_message     text,
	amount_refunded     bigint      NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
	refund_reserved     bigint      NOT NULL DEFAULT 0 CHECK (refund_reserved >= 0),
	-- attempts counts the calls made to the processor for this payment, so
	-- the reconciler never gives up on a payment a retry is sending again.
	attempts            integer     NOT NULL DEFAULT 1,
	last_attempt_at     timestamptz NOT NULL DEFAULT now(),
	next_check_at       timestamptz NOT NULL DEFAULT now(),
	created_at          timestamptz NOT NULL DEFAULT now(),
	updated_at          timestamptz NOT NULL DEFAULT now(),
	CHECK (amount_refunded + refund_reserved <= amount),
	CHECK (status <> 'refunded' OR amount_refunded = amount),
	CHECK (status <> 'failed' OR failure_code IS NOT NULL)
);

-- One payment per order: the second guard against a double charge, after
-- the idempotency key.
CREATE UNIQUE INDEX payments_order_id_key ON payments (order_id);

-- The reconciler's queue: pending payments, the most overdue first.
CREATE INDEX payments_pending_idx ON payments (next_check_at) WHERE status = 'pending';
