-- The id of the request that queued a message (X-Request-ID), so that its
-- delivery, however late, is logged under the same id as the request and
-- one query finds both. NULL for messages queued outside a request.
ALTER TABLE outbox_messages ADD COLUMN request_id text CHECK (request_id <> '');
