-- An order is what a checkout bought, frozen: the shipping address is a
-- copy (the buyer may edit or delete their saved addresses later), and the
-- total is computed here from the lines, in one currency, in integer minor
-- units. Its status follows the state machine of internal/orders/status.go;
-- the CHECK keeps a bug from writing a status the code does not know.
--
-- The checkout key is unique per buyer, not globally: it is the buyer's
-- client that draws it. request_fingerprint (SHA-256 of the canonical
-- request) tells a retry of the same checkout (same order back) from a
-- reuse of the key for another content (409).
CREATE TABLE orders (
	id                  uuid        PRIMARY KEY,
	buyer_id            uuid        NOT NULL,
	buyer_email         text        NOT NULL CHECK (buyer_email <> '' AND length(buyer_email) <= 254),
	idempotency_key     text        NOT NULL CHECK (idempotency_key <> '' AND length(idempotency_key) <= 200),
	request_fingerprint bytea       NOT NULL CHECK (length(request_fingerprint) = 32),
	status              text        NOT NULL CHECK (status IN ('pending', 'reserved', 'paid', 'confirmed',
		'cancel_requested', 'failed', 'cancelled', 'refunded')),
	status_reason       text        NOT NULL DEFAULT '' CHECK (length(status_reason) <= 500),
	currency            text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	total_amount        bigint      NOT NULL CHECK (total_amount >= 0),
	ship_name           text        NOT NULL CHECK (ship_name <> '' AND length(ship_name) <= 100),
	ship_line1          text        NOT NULL CHECK (ship_line1 <> '' AND length(ship_line1) <= 200),
	ship_line2          text        NOT NULL DEFAULT '' CHECK (length(ship_line2) <= 200),
	ship_city           text        NOT NULL CHECK (ship_city <> '' AND length(ship_city) <= 100),
	ship_postal_code    text        NOT NULL CHECK (ship_postal_code <> '' AND length(ship_postal_code) <= 20),
	ship_country        text        NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$'),
	created_at          timestamptz NOT NULL DEFAULT now(),
	updated_at          timestamptz NOT NULL DEFAULT now(),
	-- When the status last changed: the recovery loop's "stuck for how
	-- long" is measured from here, not from creation.
	status_changed_at   timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT orders_buyer_idempotency_key UNIQUE (buyer_id, idempotency_key)
);

-- A buyer's orders, newest first (keyset on created_at, id), with or
-- without a status filter.
CREATE INDEX orders_buyer_created_idx ON orders (buyer_id, created_at DESC, id DESC);

-- The checkout's recovery loop: orders in a status since before a time.
CREATE INDEX orders_status_changed_idx ON orders (status, status_changed_at, id);
