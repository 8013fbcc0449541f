-- A delivery is one seller's parcel of one order, created when the order is
-- confirmed: each seller ships their own lines, so the pair is unique. The
-- seller moves it forward (internal/orders/deliveries.go); the CHECK makes
-- a shipped parcel without carrier or tracking number impossible, whatever
-- the code does. delivery_events is its history, appended with each move,
-- which is what the buyer's tracking page lists.
CREATE TABLE deliveries (
	id              uuid        PRIMARY KEY,
	order_id        uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	seller_id       uuid        NOT NULL,
	status          text        NOT NULL CHECK (status IN ('preparing', 'shipped', 'in_transit', 'delivered', 'returned')),
	carrier         text        NOT NULL DEFAULT '' CHECK (length(carrier) <= 100),
	tracking_number text        NOT NULL DEFAULT '' CHECK (length(tracking_number) <= 100),
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT deliveries_order_seller_key UNIQUE (order_id, seller_id),
	CHECK (status = 'preparing' OR (carrier <> '' AND tracking_number <> ''))
);

-- A seller's sales, newest first (keyset on created_at, id), with or
-- without a delivery status filter.
CREATE INDEX deliveries_seller_created_idx ON deliveries (seller_id, created_at DESC, id DESC);

CREATE TABLE delivery_events (
	id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	delivery_id     uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	status          text        NOT NULL,
	carrier         text        NOT NULL DEFAULT '',
	tracking_number text        NOT NULL DEFAULT '',
	at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX delivery_events_delivery_idx ON delivery_events (delivery_id, id);
