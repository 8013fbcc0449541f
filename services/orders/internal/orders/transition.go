package orders

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Transition moves order id to status to, for the checkout saga
// (internal). Asking for the status the order already has changes nothing
// and sends nothing, so the saga may repeat a step; a transition the state
// machine does not have is a 409 naming both statuses. reason is required
// by the statuses that NeedsReason.
func (s *Service) Transition(ctx context.Context, id uuid.UUID, to Status, reason string) (Order, error) {
	return s.transition(ctx, id, nil, to, reason)
}

// RequestCancel records buyer's request to cancel order id: it becomes
// cancel_requested, for the aggregator to refund, restock and finish as
// cancelled or refunded. It is refused (409) once a delivery has shipped or
// the order is final; asking again is a no-op. Another buyer's order is
// NotFound.
func (s *Service) RequestCancel(ctx context.Context, buyer, id uuid.UUID, reason string) (Order, error) {
	if reason == "" {
		reason = "asked by the buyer"
	}
	return s.transition(ctx, id, &buyer, CancelRequested, reason)
}

// transition runs one transition in a transaction that holds the order's
// row lock, so concurrent transitions of one order (a saga retry, a
// buyer's cancel, a seller's shipment) apply one after the other, each
// seeing the status the previous one left.
func (s *Service) transition(ctx context.Context, id uuid.UUID, buyer *uuid.UUID, to Status, reason string) (Order, error) {
	if to.NeedsReason() && reason == "" {
		return Order{}, apierr.InvalidFields(apierr.FieldError{Field: "reason", Detail: fmt.Sprintf("is required to make an order %s", to)})
	}
	var changed bool
	var from Status
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		o, err := lockOrder(ctx, tx, id, buyer)
		if err != nil {
			return err
		}
		from = o.Status
		changed, err = s.apply(ctx, tx, &o, to, reason)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	if changed {
		logging.Of(ctx, s.log).Info("order status changed", "order_id", id, "from", from, "to", to, "reason", reason)
		s.entered.WithLabelValues(string(to)).Inc()
	}
	return getOrder(ctx, s.pool, id, buyer)
}

// apply is the one place a transition happens, in tx, on o whose row tx
// has locked: the state machine's check, the guards that need more than
// the two statuses, the change with its history, and what the new status
// sets off. It reports whether anything changed.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, o *Order, to Status, reason string) (bool, error) {
	if o.Status == to {
		return false, nil // a repeated step: already done, nothing to send again
	}
	if !o.Status.CanBecome(to) {
		return false, errIllegalTransition("order", o.ID, o.Status, to, transitions[o.Status])
	}
	if to == CancelRequested {
		shipped, err := countShippedDeliveries(ctx, tx, o.ID)
		if err != nil {
			return false, err
		}
		if shipped > 0 {
			return false, apierr.WithCode(apierr.Conflict, "already-shipped", fmt.Errorf(
				"order %s cannot be cancelled: %d of its deliveries have shipped", o.ID, shipped))
		}
	}
	if err := updateOrderStatus(ctx, tx, o.ID, to, reason); err != nil {
		return false, err
	}
	if err := insertTransition(ctx, tx, o.ID, o.Status, to, reason); err != nil {
		return false, err
	}
	o.Status, o.StatusReason = to, reason
	if to == Confirmed {
		return true, s.confirm(ctx, tx, o)
	}
	return true, nil
}

// confirm creates the order's deliveries, one per seller, and queues the
// buyer's confirmation and each seller's new-sale email, in the
// transaction that confirms it: both exist if and only if the order is
// confirmed, and a repeated confirmation (a no-op) sends nothing.
func (s *Service) confirm(ctx context.Context, tx pgx.Tx, o *Order) error {
	byOrder, err := listLines(ctx, tx, []uuid.UUID{o.ID}, nil)
	if err != nil {
		return err
	}
	lines := byOrder[o.ID]
	o.Lines = lines
	if _, err := mail.Enqueue(ctx, tx, s.orderConfirmedEmail(o)); err != nil {
		return err
	}
	var sellers []uuid.UUID
	for _, l := range lines {
		if !slices.Contains(sellers, l.SellerID) {
			sellers = append(sellers, l.SellerID)
		}
	}
	for _, seller := range sellers {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if err := insertDelivery(ctx, tx, id, o.ID, seller); err != nil {
			return err
		}
		mine, _ := sellerLines(lines, seller)
		if _, err := mail.Enqueue(ctx, tx, s.newSaleEmail(o, mine)); err != nil {
			return err
		}
	}
	return nil
}

// sellerLines returns the lines of seller and their subtotal.
func sellerLines(lines []Line, seller uuid.UUID) ([]Line, int64) {
	var mine []Line
	var sum int64
	for _, l := range lines {
		if l.SellerID == seller {
			mine = append(mine, l)
			sum += l.Total // cannot overflow: the order's total did not
		}
	}
	return mine, sum
}
