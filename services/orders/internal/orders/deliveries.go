package orders

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// DeliveryStatus is where a seller's parcel is.
type DeliveryStatus string

// The statuses of a delivery.
const (
	Preparing DeliveryStatus = "preparing"
	Shipped   DeliveryStatus = "shipped"
	InTransit DeliveryStatus = "in_transit"
	Delivered DeliveryStatus = "delivered"
	// Returned: the parcel came back to the seller — refused, undeliverable,
	// or sent back by the buyer after delivery (final).
	Returned DeliveryStatus = "returned"
)

// DeliveryStatuses lists every delivery status, in the order of the
// journey.
var DeliveryStatuses = []DeliveryStatus{Preparing, Shipped, InTransit, Delivered, Returned}

// moves is the delivery state machine, the one place that says which
// status may follow which:
//
//	preparing ─► shipped ─► in_transit ─► delivered
//	                │           │             │
//	                └───────────┴─────────────┴─► returned
//
// No step is skipped: a parcel handed over and delivered the same day is
// recorded as in_transit then delivered, so every tracking history reads
// the same way. Nothing leaves returned; preparing cannot be returned, as
// nothing left the seller.
var moves = map[DeliveryStatus][]DeliveryStatus{
	Preparing: {Shipped},
	Shipped:   {InTransit, Returned},
	InTransit: {Delivered, Returned},
	Delivered: {Returned},
}

// Valid reports whether s is one of the delivery statuses.
func (s DeliveryStatus) Valid() bool { return slices.Contains(DeliveryStatuses, s) }

// CanBecome reports whether the delivery state machine has the move s → to.
func (s DeliveryStatus) CanBecome(to DeliveryStatus) bool { return slices.Contains(moves[s], to) }

// Delivery is one seller's parcel of one order.
type Delivery struct {
	ID             uuid.UUID
	OrderID        uuid.UUID
	SellerID       uuid.UUID
	Status         DeliveryStatus
	Carrier        string
	TrackingNumber string
	History        []DeliveryEvent
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// DeliveryEvent is one step of a delivery's history.
type DeliveryEvent struct {
	Status         DeliveryStatus
	Carrier        string
	TrackingNumber string
	At             time.Time
}

// Move is a seller's move of a delivery, validated by the HTTP boundary:
// Carrier and TrackingNumber are set with Shipped and only then.
type Move struct {
	Status         DeliveryStatus
	Carrier        string
	TrackingNumber string
}

// MoveDelivery moves seller's delivery id to m.Status, appends the step to
// its history and emails the buyer, in one transaction. Repeating the
// current status is a no-op (a 409 if it would change the carrier or the
// tracking number); a move the machine does not have is a 409; shipping an
// order that is not (or no longer) confirmed is a 409. Another seller's
// delivery is NotFound.
func (s *Service) MoveDelivery(ctx context.Context, seller, id uuid.UUID, m Move) (Delivery, error) {
	var changed bool
	var from DeliveryStatus
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The order's row lock first, as every transition takes it: a
		// buyer's cancellation and this shipment cannot both succeed.
		o, err := lockOrderOfDelivery(ctx, tx, id, seller)
		if err != nil {
			return err
		}
		d, err := lockDelivery(ctx, tx, id)
		if err != nil {
			return err
		}
		from = d.Status
		if d.Status == m.Status {
			if m.Status == Shipped && (m.Carrier != d.Carrier || m.TrackingNumber != d.TrackingNumber) {
				return apierr.WithCode(apierr.Conflict, "already-shipped", fmt.Errorf(
					"delivery %s already shipped with %s, tracking number %s; the carrier and tracking number cannot be changed", d.ID, d.Carrier, d.TrackingNumber))
			}
			return nil // a repeated step: already done, nothing to send again
		}
		if !d.Status.CanBecome(m.Status) {
			return errIllegalTransition("delivery", d.ID, d.Status, m.Status, moves[d.Status])
		}
		if m.Status == Shipped && o.Status != Confirmed {
			return apierr.WithCode(apierr.Conflict, "order-not-confirmed", fmt.Errorf(
				"order %s is %s, so its delivery %s cannot ship", o.ID, o.Status, d.ID))
		}
		if m.Status == Shipped {
			d.Carrier, d.TrackingNumber = m.Carrier, m.TrackingNumber
		}
		d.Status = m.Status
		if err := updateDelivery(ctx, tx, &d); err != nil {
			return err
		}
		if err := insertDeliveryEvent(ctx, tx, &d); err != nil {
			return err
		}
		changed = true
		lines, err := listLines(ctx, tx, []uuid.UUID{o.ID}, &seller)
		if err != nil {
			return err
		}
		_, err = mail.Enqueue(ctx, tx, s.deliveryEmail(&o, &d, lines[o.ID]))
		return err
	})
	if err != nil {
		return Delivery{}, err
	}
	if changed {
		logging.Of(ctx, s.log).Info("delivery moved", "delivery_id", id, "from", from, "to", m.Status)
	}
	return getDelivery(ctx, s.pool, id)
}

// Tracking returns the status of buyer's order id and its deliveries with
// their histories. Another buyer's order is NotFound.
func (s *Service) Tracking(ctx context.Context, buyer, id uuid.UUID) (Status, []Delivery, error) {
	o, err := s.GetForBuyer(ctx, buyer, id)
	if err != nil {
		return "", nil, err
	}
	return o.Status, o.Deliveries, nil
}

// Sale is a seller's part of an order: their lines only, what they need to
// ship them, and their delivery.
type Sale struct {
	OrderID     uuid.UUID
	OrderStatus Status
	OrderedAt   time.Time
	Address     Address
	Currency    string
	Lines       []Line
	Subtotal    int64
	Delivery    Delivery
}

// SalesFilter selects a page of a seller's sales.
type SalesFilter struct {
	DeliveryStatus DeliveryStatus // "" for every status
	Limit          int
	After          *Cursor
}

// Sales returns a page of seller's sales, newest confirmation first, and
// the cursor of the next page (nil on the last). A sale exists from the
// order's confirmation on, as its delivery does.
func (s *Service) Sales(ctx context.Context, seller uuid.UUID, f SalesFilter) ([]Sale, *Cursor, error) {
	sales, err := listSales(ctx, s.pool, seller, f.DeliveryStatus, f.After, f.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	sales, next := page(sales, f.Limit, func(s Sale) Cursor { return Cursor{At: s.Delivery.CreatedAt, ID: s.Delivery.ID} })
	if len(sales) == 0 {
		return sales, next, nil
	}
	orderIDs := make([]uuid.UUID, len(sales))
	deliveryIDs := make([]uuid.UUID, len(sales))
	for i, sale := range sales {
		orderIDs[i], deliveryIDs[i] = sale.OrderID, sale.Delivery.ID
	}
	// The seller filter is what keeps another seller's lines of a shared
	// order out of this seller's view.
	lines, err := listLines(ctx, s.pool, orderIDs, &seller)
	if err != nil {
		return nil, nil, err
	}
	events, err := listDeliveryEvents(ctx, s.pool, deliveryIDs)
	if err != nil {
		return nil, nil, err
	}
	for i := range sales {
		sales[i].Lines = lines[sales[i].OrderID]
		for _, l := range sales[i].Lines {
			sales[i].Subtotal += l.Total
		}
		sales[i].Delivery.History = events[sales[i].Delivery.ID]
	}
	return sales, next, nil
}
