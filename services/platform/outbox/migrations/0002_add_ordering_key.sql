-- Some messages must reach their recipient in the order they were queued
-- (a buyer's "shipped" before "delivered", even when the first send failed
-- and waits in backoff). Messages sharing an ordering key are claimed one
-- at a time, oldest first; a message without a key is not held back.
ALTER TABLE outbox_messages ADD COLUMN ordering_key text CHECK (ordering_key <> '');

-- The claim's "is an earlier message of this key still to send?" probe.
CREATE INDEX outbox_messages_ordering_idx ON outbox_messages (ordering_key, created_at, id)
	WHERE ordering_key IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL;
