-- The transactional outbox: a service inserts a row here in the same
-- transaction as the business change it announces, so a message exists if
-- and only if the change committed. A relay sends it afterwards, at least
-- once. Rows are never deleted by the relay: sent rows record what went out
-- and dead rows what was given up on, so nothing disappears silently.
CREATE TABLE outbox_messages (
	-- The message's identity, stable across re-sends, so the receiving side
	-- (Mailjet's CustomID) can recognise a duplicate.
	id              uuid        PRIMARY KEY,
	topic           text        NOT NULL CHECK (topic <> ''),
	payload         jsonb       NOT NULL,
	created_at      timestamptz NOT NULL DEFAULT now(),
	-- Claims so far, counted when a relay claims the row, before it sends:
	-- a relay that dies mid-send still used up an attempt.
	attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	-- A relay's lease: until then no other relay may claim the row. When a
	-- relay dies holding it, the row becomes claimable again at expiry.
	claimed_until   timestamptz,
	-- Names the claim, so a relay that outlived its lease cannot record an
	-- outcome over the claim of the relay that took the row over.
	claim_token     uuid,
	sent_at         timestamptz,
	dead_at         timestamptz,
	last_error      text,
	CHECK (sent_at IS NULL OR dead_at IS NULL)
);

-- The relay's claim query: rows still to send, oldest due first. Partial, so
-- it stays as small as the backlog however many sent rows accumulate.
CREATE INDEX outbox_messages_due_idx ON outbox_messages (next_attempt_at)
	WHERE sent_at IS NULL AND dead_at IS NULL;

-- Operators list what the relay gave up on.
CREATE INDEX outbox_messages_dead_idx ON outbox_messages (dead_at)
	WHERE dead_at IS NOT NULL;
