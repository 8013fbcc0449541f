-- The aggregator's reconciliation walks the reservations of the recent
-- past (GET /internal/reservations?since=) after a restore, oldest first,
-- in pages keyed on (created_at, order_id): this index serves both the
-- range and the order, whatever number of settled reservations piles up.
CREATE INDEX reservations_created_idx ON reservations (created_at, order_id);
