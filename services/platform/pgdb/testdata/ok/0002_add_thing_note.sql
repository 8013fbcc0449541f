-- Two statements in one file run in one transaction.
ALTER TABLE things ADD COLUMN note text;
INSERT INTO things (id, name) VALUES (1, 'first');
