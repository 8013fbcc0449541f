-- The orders whose bought lines have been taken out of their buyer's cart
-- (POST /internal/carts/{user_id}/checkouts). The live checkout and the
-- recovery loop both ask for it, possibly more than once: the row makes
-- the removal happen once per order, so a retry never takes a line the
-- buyer added again afterwards.
CREATE TABLE cart_checkouts (
	order_id   uuid        PRIMARY KEY,
	user_id    uuid        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
