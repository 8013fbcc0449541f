-- The aggregator's reconciliation walks the payments of the recent past
-- (GET /internal/payments?since=) after a restore, oldest first, in pages
-- keyed on (created_at, id): this index serves both the range and the
-- order, so a walk of the last day does not scan the whole table.
CREATE INDEX payments_created_idx ON payments (created_at, id);
