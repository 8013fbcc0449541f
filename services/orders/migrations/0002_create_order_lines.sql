-- The lines of an order snapshot what was bought at checkout time (name,
-- unit price, seller), so that an order reads the same after the product is
-- renamed, repriced or archived in inventory. The seller's email is kept for
-- the new-sale email only; it is never shown to buyers. line_total is
-- stored, not recomputed, so that sums in SQL (a seller's subtotal) agree
-- with the overflow-checked arithmetic of the service.
CREATE TABLE order_lines (
	order_id     uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	line_no      integer NOT NULL CHECK (line_no >= 1),
	product_id   uuid    NOT NULL,
	seller_id    uuid    NOT NULL,
	seller_email text    NOT NULL CHECK (seller_email <> '' AND length(seller_email) <= 254),
	name         text    NOT NULL CHECK (name <> '' AND length(name) <= 200),
	unit_price   bigint  NOT NULL CHECK (unit_price >= 0),
	quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
	line_total   bigint  NOT NULL CHECK (line_total >= 0),
	PRIMARY KEY (order_id, line_no),
	-- One line per product: a cart merges quantities, and a seller's sale
	-- lists each product once.
	CONSTRAINT order_lines_product_key UNIQUE (order_id, product_id)
);

-- A seller's lines of a page of orders (GET /v1/sales).
CREATE INDEX order_lines_seller_idx ON order_lines (seller_id, order_id);
