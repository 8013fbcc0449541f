-- Carts: one per signed-in user, holding product quantities, not stock (a
-- cart reserves nothing; checkout does). The carts row exists so that
-- changes to one user's lines can be serialised by locking it: that is how
-- the line limit holds under concurrent requests. Lines refer to products,
-- which are never deleted, so a line for an archived product stays and is
-- flagged rather than disappearing.
CREATE TABLE carts (
	user_id    uuid        PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_lines (
	user_id    uuid        NOT NULL REFERENCES carts (user_id) ON DELETE CASCADE,
	product_id uuid        NOT NULL REFERENCES products (id),
	quantity   integer     NOT NULL CHECK (quantity BETWEEN 1 AND 99),
	added_at   timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, product_id)
);
