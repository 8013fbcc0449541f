-- Products are what sellers put on sale and what every other inventory table
-- refers to. They are never deleted, only archived: orders keep referring to
-- them by id.
--
-- Stock is two counters on the product row itself, so that a reservation is
-- one conditional UPDATE of one row (no read-then-write, no stock table to
-- join): on_hand units are in the warehouse, reserved of them are promised
-- to orders being checked out, and available = on_hand - reserved. The CHECK
-- is the last line of defence against overselling: whatever the code does,
-- no counter goes negative and nothing is promised that is not on hand.
--
-- Money is integer minor units with its ISO 4217 currency (checked against
-- the list of codes by the service; the pattern here keeps the column
-- sane). version counts changes of what a seller edits (name, description,
-- price, status): it is the ETag that PATCH's If-Match is compared with.
-- Stock counters move with every checkout and are deliberately outside it.
CREATE TABLE products (
	id           uuid        PRIMARY KEY,
	seller_id    uuid        NOT NULL,
	name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
	description  text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
	price_amount bigint      NOT NULL CHECK (price_amount > 0),
	currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	on_hand      integer     NOT NULL DEFAULT 0 CHECK (on_hand <= 1000000000),
	reserved     integer     NOT NULL DEFAULT 0,
	status       text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
	version      integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	archived_at  timestamptz,
	-- Full-text search: the name weighs A, the description B, so ts_rank
	-- puts a name match above a description match. English stemming lets
	-- "mugs" find "mug". Generated, so it can never drift from the text.
	search       tsvector    GENERATED ALWAYS AS (
		setweight(to_tsvector('english', name), 'A') ||
		setweight(to_tsvector('english', description), 'B')
	) STORED,
	CONSTRAINT products_stock_check CHECK (on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand),
	CONSTRAINT products_archived_check CHECK ((status = 'archived') = (archived_at IS NOT NULL))
);

CREATE INDEX products_search_idx ON products USING gin (search);

-- The catalogue's keyset orders, over active products only (archived ones
-- never appear in lists): newest first, and by price either way.
CREATE INDEX products_active_newest_idx ON products (created_at DESC, id DESC) WHERE status = 'active';
CREATE INDEX products_active_price_idx ON products (price_amount, id) WHERE status = 'active';

-- A seller's own list (archived included, newest first) and the catalogue's
-- seller filter.
CREATE INDEX products_seller_idx ON products (seller_id, created_at DESC, id DESC);
