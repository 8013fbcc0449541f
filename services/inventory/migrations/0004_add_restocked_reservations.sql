-- Cancelling a confirmed order must give its units back, and a committed
-- reservation had no way to: committed was final. 'restocked' is the
-- status a committed reservation moves to, once, when its units return to
-- on_hand (POST /internal/reservations/{order_id}/restock). The move is an
-- UPDATE guarded by status = 'committed', as every transition of a
-- reservation is guarded by the status it leaves, so the units come back
-- exactly once however many restocks race. settled_at keeps its meaning
-- (when the reservation left held), so its CHECK needs no change.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
	CHECK (status IN ('held', 'committed', 'released', 'expired', 'restocked'));
