package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// ReservationStatus is where a reservation is in its life: held, then
// exactly one of committed, released or expired; a committed one may later
// be restocked, for good.
type ReservationStatus string

// The statuses.
const (
	Held      ReservationStatus = "held"      // the stock is reserved (counted in products.reserved)
	Committed ReservationStatus = "committed" // the stock was sold: it left on_hand
	Released  ReservationStatus = "released"  // the checkout gave the stock back
	Expired   ReservationStatus = "expired"   // the TTL passed first: the stock went back
	Restocked ReservationStatus = "restocked" // the sale was cancelled: the units returned to on_hand
)

// Line is a quantity of one product.
type Line struct {
	ProductID uuid.UUID
	Quantity  int
}

// Reservation is the stock held for one order.
type Reservation struct {
	OrderID   uuid.UUID
	Status    ReservationStatus
	Lines     []Line // in product id order
	ExpiresAt time.Time
	CreatedAt time.Time
	SettledAt *time.Time // when it left held
	// RestockNote says which units a restock could not count back (the
	// stock was at its ceiling); nil when every unit came back.
	RestockNote *string
}

// ReserveRequest asks for stock for an order.
type ReserveRequest struct {
	OrderID uuid.UUID
	Lines   []Line // one per product
	// TTL is how long the stock is held; 0 means the configured default.
	TTL time.Duration
}

// Reserve reserves every line of the order, or none: each line is one
// conditional UPDATE (enough available, product on sale), all in one
// transaction, in product id order, so concurrent reservations neither
// oversell nor deadlock. A shortage is a Conflict with code out-of-stock
// listing every line at fault (by its index in req.Lines), and leaves
// nothing behind.
//
// Reserve is idempotent on the order id: when the order already has a
// reservation with the same lines, that reservation is returned (created is
// false) whatever its status since; other lines are a Conflict.
func (s *Service) Reserve(ctx context.Context, req ReserveRequest) (res Reservation, created bool, err error) {
	if len(req.Lines) == 0 {
		return Reservation{}, false, apierr.InvalidFields(apierr.FieldError{Field: "lines", Detail: "must hold at least one line"})
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = s.cfg.ReservationTTL
	}
	// The lines in product id order, remembering where each was in the
	// request for the error messages.
	index := make([]int, len(req.Lines))
	for i := range index {
		index[i] = i
	}
	slices.SortFunc(index, func(a, b int) int { return compareLines(req.Lines[a], req.Lines[b]) })
	lines := make([]Line, len(index))
	for i, j := range index {
		lines[i] = req.Lines[j]
		if i > 0 && lines[i].ProductID == lines[i-1].ProductID {
			return Reservation{}, false, apierr.InvalidFields(apierr.FieldError{
				Field: fmt.Sprintf("lines[%d].product_id", max(j, index[i-1])), Detail: "appears in another line; send one line per product"})
		}
	}

	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanReservation(tx.QueryRow(ctx, insertReservationSQL, req.OrderID, ttl.Seconds()))
		if errors.Is(err, pgx.ErrNoRows) {
			// The order has a reservation already: same request, same answer.
			existing, err := getReservation(ctx, tx, req.OrderID)
			if err != nil {
				return err
			}
			if !slices.Equal(existing.Lines, lines) {
				return apierr.WithCode(apierr.Conflict, CodeReservationMismatch,
					fmt.Errorf("order %s already has a reservation with other lines", req.OrderID))
			}
			res = existing
			return nil
		}
		if err != nil {
			return fmt.Errorf("reserve for %s: %w", req.OrderID, err)
		}
		failed, err := takeStock(ctx, tx, lines)
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			return shortage(ctx, tx, lines, index, failed) // rolls back every line
		}
		ids, quantities := make([]uuid.UUID, len(lines)), make([]int32, len(lines))
		for i, l := range lines {
			ids[i], quantities[i] = l.ProductID, int32(l.Quantity)
		}
		if _, err := tx.Exec(ctx, insertReservationLinesSQL, req.OrderID, ids, quantities); err != nil {
			return fmt.Errorf("reserve for %s: %w", req.OrderID, constraints.Map(err))
		}
		r.Lines = lines
		res, created = r, true
		return nil
	})
	if err != nil {
		return Reservation{}, false, err
	}
	if created {
		logging.Of(ctx, s.log).Debug("stock reserved", "order_id", req.OrderID, "lines", len(lines), "expires_at", res.ExpiresAt)
	}
	return res, created, nil
}

// shortage is the out-of-stock error for the failed lines (indexes into
// lines), each named by its place in the request. The product states read
// here only explain: the decision was the conditional UPDATE's.
func shortage(ctx context.Context, q pgdb.Querier, lines []Line, index, failed []int) error {
	ids := make([]uuid.UUID, len(failed))
	for i, f := range failed {
		ids[i] = lines[f].ProductID
	}
	states, err := stockStates(ctx, q, ids)
	if err != nil {
		return fmt.Errorf("explain shortage: %w", err)
	}
	fields := make([]apierr.FieldError, 0, len(failed))
	for _, f := range failed {
		l, at := lines[f], index[f]
		st, found := states[l.ProductID]
		var fe apierr.FieldError
		switch {
		case !found:
			fe = apierr.FieldError{Field: fmt.Sprintf("lines[%d].product_id", at), Detail: fmt.Sprintf("product %s does not exist", l.ProductID)}
		case st.status == Archived:
			fe = apierr.FieldError{Field: fmt.Sprintf("lines[%d].product_id", at), Detail: fmt.Sprintf("product %s is no longer on sale", l.ProductID)}
		case st.available <= 0:
			fe = apierr.FieldError{Field: fmt.Sprintf("lines[%d].quantity", at), Detail: fmt.Sprintf("product %s is out of stock", l.ProductID)}
		case st.available < l.Quantity:
			fe = apierr.FieldError{Field: fmt.Sprintf("lines[%d].quantity", at), Detail: fmt.Sprintf("only %d of product %s available", st.available, l.ProductID)}
		default: // stock came back after the attempt
			fe = apierr.FieldError{Field: fmt.Sprintf("lines[%d].quantity", at), Detail: fmt.Sprintf("product %s was short of stock at that moment; retry", l.ProductID)}
		}
		fields = append(fields, fe)
	}
	slices.SortFunc(fields, func(a, b apierr.FieldError) int { return compareFieldIndex(a.Field, b.Field) })
	return &apierr.Error{
		Kind:   apierr.Conflict,
		Code:   CodeOutOfStock,
		Err:    fmt.Errorf("%d of %d lines cannot be reserved; nothing was reserved", len(failed), len(lines)),
		Fields: fields,
	}
}

// compareFieldIndex orders "lines[2].x" before "lines[10].x".
func compareFieldIndex(a, b string) int {
	var i, j int
	_, _ = fmt.Sscanf(a, "lines[%d]", &i)
	_, _ = fmt.Sscanf(b, "lines[%d]", &j)
	return i - j
}

// Reservation returns the reservation of an order.
func (s *Service) Reservation(ctx context.Context, orderID uuid.UUID) (Reservation, error) {
	return getReservation(ctx, s.pool, orderID)
}

// MaxOrdersPerLookup bounds the orders ReservationsOf reads at once.
const MaxOrdersPerLookup = 100

// ReservationsOf returns the reservations of the orders, whatever their
// status, in the order of orderIDs; an order without one is left out, so
// that its absence is a definite "no reservation".
func (s *Service) ReservationsOf(ctx context.Context, orderIDs []uuid.UUID) ([]Reservation, error) {
	if len(orderIDs) == 0 || len(orderIDs) > MaxOrdersPerLookup {
		return nil, apierr.InvalidFields(apierr.FieldError{Field: "order_id", Detail: fmt.Sprintf("must name 1 to %d orders", MaxOrdersPerLookup)})
	}
	list, err := listReservationsOf(ctx, s.pool, orderIDs)
	if err != nil {
		return nil, err
	}
	byOrder := make(map[uuid.UUID]Reservation, len(list))
	for _, r := range list {
		byOrder[r.OrderID] = r
	}
	out := make([]Reservation, 0, len(list))
	for _, id := range orderIDs {
		if r, ok := byOrder[id]; ok {
			out = append(out, r)
			delete(byOrder, id) // an id asked twice is answered once
		}
	}
	return out, nil
}

// ReservationCursor is where a walk of the reservations stopped: the
// creation time and order id of the last one served.
type ReservationCursor struct {
	CreatedAt time.Time
	OrderID   uuid.UUID
}

// ReservationsSince returns up to limit reservations created at or after
// since, oldest first, starting after the cursor (nil: from the start),
// and the cursor of the next page (nil on the last). It is how the
// aggregator's reconciliation walks the recent past after a restore.
func (s *Service) ReservationsSince(ctx context.Context, since time.Time, after *ReservationCursor, limit int) ([]Reservation, *ReservationCursor, error) {
	list, err := listReservationsSince(ctx, s.pool, since, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(list) <= limit {
		return list, nil, nil
	}
	list = list[:limit]
	last := list[len(list)-1]
	return list, &ReservationCursor{CreatedAt: last.CreatedAt, OrderID: last.OrderID}, nil
}

// Commit turns the order's held reservation into a sale: its units leave
// on_hand and reserved. Committing a committed reservation returns it
// (idempotent). A reservation past its TTL is a Conflict
// (reservation-expired), and is expired here if the sweeper has not yet;
// a released one is a Conflict too.
func (s *Service) Commit(ctx context.Context, orderID uuid.UUID) (Reservation, error) {
	var (
		res        Reservation
		changed    bool
		expiredNow bool
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, ok, err := transition(ctx, tx, commitReservationSQL, orderID)
		if err != nil {
			return err
		}
		if ok {
			res, changed = r, true
			return moveStock(ctx, tx, commitStockSQL, r.Lines)
		}
		// Not held, or past its TTL: expire it now in the latter case (the
		// same guarded transition as the sweeper's), so its stock returns
		// at once.
		if r, ok, err = transition(ctx, tx, expireReservationSQL, orderID); err != nil {
			return err
		}
		if ok {
			res, expiredNow = r, true
			return moveStock(ctx, tx, releaseStockSQL, r.Lines)
		}
		res, err = getReservation(ctx, tx, orderID)
		return err
	})
	if err != nil {
		return Reservation{}, err
	}
	if changed {
		logging.Of(ctx, s.log).Info("reservation committed", "order_id", orderID)
	}
	if expiredNow {
		logging.Of(ctx, s.log).Info("reservation expired", "order_id", orderID, "by", "commit")
	}
	switch res.Status {
	case Committed:
		return res, nil
	case Expired:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationExpired,
			fmt.Errorf("reservation of order %s expired at %s; its stock was returned", orderID, res.ExpiresAt.UTC().Format(time.RFC3339)))
	case Released:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationReleased,
			fmt.Errorf("reservation of order %s was released", orderID))
	case Restocked:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationRestocked,
			fmt.Errorf("reservation of order %s was committed, then restocked: its sale was cancelled", orderID))
	}
	return Reservation{}, fmt.Errorf("commit %s: reservation is %s after both transitions", orderID, res.Status)
}

// Release gives the order's held reservation back to sale. Releasing a
// released, expired or restocked reservation returns it (idempotent: its
// stock is back already); a committed one is a Conflict (see Restock).
func (s *Service) Release(ctx context.Context, orderID uuid.UUID) (Reservation, error) {
	var (
		res     Reservation
		changed bool
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, ok, err := transition(ctx, tx, releaseReservationSQL, orderID)
		if err != nil {
			return err
		}
		if ok {
			res, changed = r, true
			return moveStock(ctx, tx, releaseStockSQL, r.Lines)
		}
		res, err = getReservation(ctx, tx, orderID)
		return err
	})
	if err != nil {
		return Reservation{}, err
	}
	if changed {
		logging.Of(ctx, s.log).Info("reservation released", "order_id", orderID)
	}
	if res.Status == Committed {
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationCommitted,
			fmt.Errorf("reservation of order %s was committed: its stock is sold", orderID))
	}
	return res, nil
}

// Restock returns the units of the order's committed reservation to
// on_hand, for an order cancelled after its confirmation: committed →
// restocked and on_hand + quantity for each line, in one transaction whose
// status change is guarded by status = 'committed', so of concurrent
// restocks exactly one moves the stock. A unit that would take on_hand
// above its ceiling is not added: the restock still happens, once, and
// its note records what was left out, so a cancellation never wedges on
// a seller's stock count. Restocking a restocked reservation
// returns it (idempotent); a held, released or expired one is a Conflict,
// as its units never left the stock.
func (s *Service) Restock(ctx context.Context, orderID uuid.UUID) (Reservation, error) {
	var (
		res     Reservation
		changed bool
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, ok, err := transition(ctx, tx, restockReservationSQL, orderID)
		if err != nil {
			return err
		}
		if ok {
			res, changed = r, true
			left, err := restockLines(ctx, tx, r.Lines)
			if err != nil || len(left) == 0 {
				return err
			}
			note := restockNote(left)
			res.RestockNote = &note
			_, err = tx.Exec(ctx, setRestockNoteSQL, orderID, note)
			return err
		}
		res, err = getReservation(ctx, tx, orderID)
		return err
	})
	if err != nil {
		return Reservation{}, err
	}
	switch {
	case changed && res.RestockNote != nil:
		// Reported once, here and on the reservation: a retry finds it
		// restocked and changes nothing.
		logging.Of(ctx, s.log).Warn("reservation restocked short of its units", "order_id", orderID, "note", *res.RestockNote)
	case changed:
		logging.Of(ctx, s.log).Info("reservation restocked", "order_id", orderID, "lines", len(res.Lines))
	}
	switch res.Status {
	case Restocked:
		return res, nil
	case Held:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationHeld,
			fmt.Errorf("reservation of order %s is held, not committed: release it to return its stock", orderID))
	case Released:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationReleased,
			fmt.Errorf("reservation of order %s was released: its stock is back already", orderID))
	case Expired:
		return Reservation{}, apierr.WithCode(apierr.Conflict, CodeReservationExpired,
			fmt.Errorf("reservation of order %s expired: its stock is back already", orderID))
	}
	return Reservation{}, fmt.Errorf("restock %s: reservation is %s after the transition", orderID, res.Status)
}

// restockNote is the reservation's record of the units a restock left
// out.
func restockNote(left []Line) string {
	parts := make([]string, len(left))
	for i, l := range left {
		parts[i] = fmt.Sprintf("%d of product %s", l.Quantity, l.ProductID)
	}
	return fmt.Sprintf("not counted back, as on_hand may not exceed %d: %s", restockCeilingOnHand, strings.Join(parts, ", "))
}

func errReservationNotFound(orderID uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "order %s has no reservation", orderID)
}
