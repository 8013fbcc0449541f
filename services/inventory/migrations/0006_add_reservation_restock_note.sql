-- A restock must never fail on the stock's ceiling (on_hand <= 10^9): a
-- seller who raised the stock after the sale would otherwise wedge the
-- buyer's cancellation (and, before the saga refunded first, its refund).
-- The restock now counts back what fits and records here what it left out
-- and why, so the shortfall is reported once instead of retried forever.
ALTER TABLE reservations ADD COLUMN restock_note text;
