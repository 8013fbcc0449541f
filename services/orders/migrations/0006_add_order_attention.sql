-- An order the checkout saga cannot finish on its own (unfinished past its
-- bound, or its refund refused by the card processor) is flagged for a
-- person instead of being retried silently forever. flag_hold takes it
-- out of the recovery loop's list: retrying would only replay the
-- refusal. The partial index serves the operators' list of flagged orders.
ALTER TABLE orders
	ADD COLUMN flagged_at timestamptz,
	ADD COLUMN flag_reason text NOT NULL DEFAULT '',
	ADD COLUMN flag_hold boolean NOT NULL DEFAULT false;
CREATE INDEX orders_flagged ON orders (flagged_at, id) WHERE flagged_at IS NOT NULL;
