package orders

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// MaxFlagReason bounds a flag's reason, as a status reason is bounded.
const MaxFlagReason = 500

// Flag flags order id for a person's attention with reason (internal: the
// checkout saga). The first flag stays; a hold replaces a flag without
// one. changed tells whether this call flagged it, so that of many
// replicas flagging one order exactly one reports it.
func (s *Service) Flag(ctx context.Context, id uuid.UUID, reason string, hold bool) (o Order, changed bool, err error) {
	if reason == "" || len([]rune(reason)) > MaxFlagReason {
		return Order{}, false, apierr.InvalidFields(apierr.FieldError{Field: "reason", Detail: fmt.Sprintf("must be 1 to %d characters", MaxFlagReason)})
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockOrder(ctx, tx, id, nil); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, flagOrderSQL, id, reason, hold)
		if err != nil {
			return fmt.Errorf("flag order %s: %w", id, err)
		}
		changed = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return Order{}, false, err
	}
	if changed {
		logging.Of(ctx, s.log).Warn("order flagged for attention", "order_id", id, "reason", reason, "hold", hold)
	}
	o, err = getOrder(ctx, s.pool, id, nil)
	return o, changed, err
}

// ClearFlag removes order id's flag and hold (an operator dealt with it);
// clearing an order without a flag changes nothing.
func (s *Service) ClearFlag(ctx context.Context, id uuid.UUID) (Order, error) {
	tag, err := s.pool.Exec(ctx, clearFlagSQL, id)
	if err != nil {
		return Order{}, fmt.Errorf("clear flag of order %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		logging.Of(ctx, s.log).Info("order flag cleared", "order_id", id)
	}
	return getOrder(ctx, s.pool, id, nil)
}

// ListFlagged returns a page of the flagged orders, the oldest flag first,
// after the cursor (nil: from the start), and the next page's cursor.
func (s *Service) ListFlagged(ctx context.Context, after *Cursor, limit int) ([]Order, *Cursor, error) {
	list, err := listFlaggedOrders(ctx, s.pool, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	list, next := page(list, limit, func(o Order) Cursor { return Cursor{At: *o.Attention.FlaggedAt, ID: o.ID} })
	return list, next, loadDetails(ctx, s.pool, list)
}
