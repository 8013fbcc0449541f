-- A user's address book: saved shipping addresses to pick from at
-- checkout. Orders copy the address they ship to, so deleting a saved
-- address deletes the row and nothing else. The per-user cap is enforced by
-- the service in a serializable transaction (a count is not a constraint).
CREATE TABLE addresses (
	id          uuid        PRIMARY KEY,
	user_id     uuid        NOT NULL,
	name        text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
	line1       text        NOT NULL CHECK (line1 <> '' AND length(line1) <= 200),
	line2       text        NOT NULL DEFAULT '' CHECK (length(line2) <= 200),
	city        text        NOT NULL CHECK (city <> '' AND length(city) <= 100),
	postal_code text        NOT NULL CHECK (postal_code <> '' AND length(postal_code) <= 20),
	country     text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX addresses_user_idx ON addresses (user_id, created_at, id);
