-- Every status change of an order, appended in the transaction that makes
-- it: the buyer sees how the order got where it is, and an operator can
-- tell a saga that compensated from one that never ran. from_status is
-- NULL for the creation. The identity orders changes made in one
-- transaction (they share now()).
CREATE TABLE order_transitions (
	id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id    uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	from_status text,
	to_status   text        NOT NULL,
	reason      text        NOT NULL DEFAULT '',
	at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_transitions_order_idx ON order_transitions (order_id, id);
