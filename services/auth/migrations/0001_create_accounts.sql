-- Accounts are who may use the shop: the one table every other auth table
-- hangs from. Emails are stored lowercased so that uniqueness and lookups
-- ignore case the way mailboxes do. The password hash is a PHC string that
-- carries its own argon2id parameters, so they can be raised later without
-- a migration. Deleting an account deletes the row (and, by cascade, its
-- tokens): the address may sign up again and no personal data lingers.
CREATE TABLE accounts (
	id            uuid        PRIMARY KEY,
	email         text        NOT NULL CHECK (email = lower(email) AND email <> ''),
	display_name  text        NOT NULL CHECK (display_name <> ''),
	role          text        NOT NULL CHECK (role IN ('buyer', 'seller', 'admin')),
	password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
	verified_at   timestamptz,
	disabled_at   timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX accounts_email_key ON accounts (email);

-- Admins page through accounts oldest first, optionally by role (keyset on
-- created_at, id).
CREATE INDEX accounts_created_idx ON accounts (created_at, id);
CREATE INDEX accounts_role_created_idx ON accounts (role, created_at, id);
