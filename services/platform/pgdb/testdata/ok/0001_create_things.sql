-- Things exist so the migration test has a table to find.
CREATE TABLE things (id bigint PRIMARY KEY, name text NOT NULL UNIQUE);
