-- Reservations hold stock for an order during checkout. order_id is the
-- primary key, which is what makes reserving idempotent: a second request
-- for the same order finds the first one's row instead of taking stock
-- again. status only ever leaves 'held', once, by a guarded UPDATE (WHERE
-- status = 'held'), so commit, release and expiry cannot both happen to one
-- reservation and its stock is given back or taken out exactly once.
-- expires_at is set from the database's clock, as is every comparison with
-- it, so instances with skewed clocks agree on what has expired.
CREATE TABLE reservations (
	order_id   uuid        PRIMARY KEY,
	status     text        NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'committed', 'released', 'expired')),
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	settled_at timestamptz,
	CHECK ((status = 'held') = (settled_at IS NULL))
);

-- The sweeper's query: held reservations by expiry. Partial, so it stays as
-- small as the number of checkouts in flight however many settled rows pile
-- up.
CREATE INDEX reservations_held_expiry_idx ON reservations (expires_at) WHERE status = 'held';

-- One row per product of the order, so the lines can be given back or
-- taken out product by product, in id order.
CREATE TABLE reservation_lines (
	order_id   uuid    NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
	product_id uuid    NOT NULL REFERENCES products (id),
	quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
	PRIMARY KEY (order_id, product_id)
);

-- Which orders hold a product, for an operator explaining its reserved
-- count.
CREATE INDEX reservation_lines_product_idx ON reservation_lines (product_id);
