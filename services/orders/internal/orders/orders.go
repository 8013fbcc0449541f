// Package orders is the orders service's domain: orders created by the
// checkout with their lines and totals, the order state machine
// (status.go), the deliveries sellers move forward and buyers track
// (deliveries.go), the address book (addresses.go), and the emails each
// event sends through the outbox, in the transaction of the event
// (email.go).
//
// Inputs arrive validated and normalized (see CheckAddress and friends,
// which the HTTP boundary calls); the rules here decide, and store.go talks
// SQL.
package orders

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Money is an amount in the minor unit of an ISO 4217 currency.
type Money struct {
	Amount   int64
	Currency string
}

// Address is a postal address.
type Address struct {
	Name       string
	Line1      string
	Line2      string
	City       string
	PostalCode string
	Country    string // ISO 3166-1 alpha-2
}

// Line is one product of an order, as it was at checkout.
type Line struct {
	ProductID   uuid.UUID
	SellerID    uuid.UUID
	SellerEmail string
	Name        string
	UnitPrice   int64 // in the order's currency's minor unit
	Quantity    int
	Total       int64 // UnitPrice × Quantity
}

// Change is one status change of an order; From is "" for its creation.
type Change struct {
	From   Status
	To     Status
	Reason string
	At     time.Time
}

// Order is a buyer's order.
type Order struct {
	ID              uuid.UUID
	BuyerID         uuid.UUID
	BuyerEmail      string
	Status          Status
	StatusReason    string
	Address         Address
	Currency        string
	Total           int64
	Lines           []Line
	History         []Change
	Deliveries      []Delivery
	CreatedAt       time.Time
	UpdatedAt       time.Time
	StatusChangedAt time.Time
	// Attention is the order's flag for a person, when FlaggedAt is set.
	Attention Attention

	fingerprint []byte
}

// Attention is why the checkout saga flagged an order it cannot finish on
// its own: unfinished past its bound, or a refund the processor refused.
type Attention struct {
	FlaggedAt *time.Time
	Reason    string
	// Hold keeps the order out of the recovery loop's list until the flag
	// is cleared: retrying would only replay what refused it.
	Hold bool
}

// Cursor is the position after which a page starts (keyset pagination on
// a time and the id).
type Cursor struct {
	At time.Time
	ID uuid.UUID
}

// Config is the orders part of the service's configuration.
type Config struct {
	// OrderURL is the page of orders that emails link to, as OrderURL/<id>.
	OrderURL string `env:"ORDERS_ORDER_URL" default:"http://127.0.0.1:8080/v1/orders"`
	// MaxAddresses bounds a user's address book.
	MaxAddresses int `env:"ORDERS_MAX_ADDRESSES" default:"20"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.OrderURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ORDERS_ORDER_URL %q must be an absolute http(s) URL", c.OrderURL))
	}
	if c.MaxAddresses < 1 || c.MaxAddresses > 100 {
		errs = append(errs, errors.New("ORDERS_MAX_ADDRESSES must be between 1 and 100"))
	}
	return errors.Join(errs...)
}

// Service applies the rules of orders, deliveries and address books.
type Service struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     hclog.Logger
	entered *prometheus.CounterVec // see Collector
}

// NewService returns the service.
func NewService(pool *pgxpool.Pool, cfg Config, log hclog.Logger) *Service {
	return &Service{pool: pool, cfg: cfg, log: log.Named("orders"), entered: newEnteredCounter()}
}

// Get returns any order, for the aggregator (internal).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Order, error) {
	return getOrder(ctx, s.pool, id, nil)
}

// GetByKey returns the order buyer's checkout key created, for the
// aggregator (internal): a replayed checkout finds its order without the
// cart it was made from. Another buyer's key is NotFound, as no key is.
func (s *Service) GetByKey(ctx context.Context, buyer uuid.UUID, key string) (Order, error) {
	return getOrderByKey(ctx, s.pool, buyer, key)
}

// GetForBuyer returns order id if buyer placed it. Another buyer's order is
// NotFound, exactly as a missing one, so ids cannot be probed.
func (s *Service) GetForBuyer(ctx context.Context, buyer, id uuid.UUID) (Order, error) {
	return getOrder(ctx, s.pool, id, &buyer)
}

// ListFilter selects a page of a buyer's orders.
type ListFilter struct {
	Status Status // "" for every status
	Limit  int
	After  *Cursor
}

// ListForBuyer returns a page of the buyer's orders, newest first, and the
// cursor of the next page (nil on the last).
func (s *Service) ListForBuyer(ctx context.Context, buyer uuid.UUID, f ListFilter) ([]Order, *Cursor, error) {
	list, err := listBuyerOrders(ctx, s.pool, buyer, f.Status, f.After, f.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	list, next := page(list, f.Limit, func(o Order) Cursor { return Cursor{At: o.CreatedAt, ID: o.ID} })
	return list, next, loadDetails(ctx, s.pool, list)
}

// RecoveryFilter selects a page of orders for the checkout's recovery loop.
type RecoveryFilter struct {
	Statuses  []Status
	OlderThan time.Duration
	// ChangedSince, when set, keeps the orders whose status changed at or
	// after it: the reconciliation after a restore walks the recent past.
	ChangedSince time.Time
	Limit        int
	After        *Cursor
}

// ListToRecover returns a page of the orders whose status is one of
// f.Statuses and has not changed for f.OlderThan, the longest-unchanged
// first.
func (s *Service) ListToRecover(ctx context.Context, f RecoveryFilter) ([]Order, *Cursor, error) {
	list, err := listStuckOrders(ctx, s.pool, f.Statuses, f.OlderThan, f.ChangedSince, f.After, f.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	list, next := page(list, f.Limit, func(o Order) Cursor { return Cursor{At: o.StatusChangedAt, ID: o.ID} })
	return list, next, loadDetails(ctx, s.pool, list)
}

// MaxOrdersPerLookup bounds the orders ByIDs reads at once.
const MaxOrdersPerLookup = 100

// ByIDs returns the orders among ids that exist, whatever their status,
// in the order of ids, with their details: an id absent from the answer
// definitely has no order (internal: the reconciliation after a restore).
func (s *Service) ByIDs(ctx context.Context, ids []uuid.UUID) ([]Order, error) {
	if len(ids) == 0 || len(ids) > MaxOrdersPerLookup {
		return nil, apierr.InvalidFields(apierr.FieldError{Field: "ids", Detail: fmt.Sprintf("must list 1 to %d ids", MaxOrdersPerLookup)})
	}
	found, err := listOrdersByIDs(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]Order, len(found))
	for _, o := range found {
		byID[o.ID] = o
	}
	list := make([]Order, 0, len(found))
	for _, id := range ids {
		if o, ok := byID[id]; ok {
			list = append(list, o)
			delete(byID, id) // an id asked twice is answered once
		}
	}
	return list, loadDetails(ctx, s.pool, list)
}

// page cuts a limit+1 query result to limit items and returns the cursor of
// the next page, or nil when there is none.
func page[T any](items []T, limit int, cursor func(T) Cursor) ([]T, *Cursor) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	c := cursor(items[len(items)-1])
	return items, &c
}

// Ref is the short reference of an order in email subjects: the last eight
// hex digits of its id (the random part of a UUIDv7), in capitals. The
// email body carries the full id.
func Ref(id uuid.UUID) string {
	s := id.String()
	return strings.ToUpper(s[len(s)-8:])
}

func errOrderNotFound(id uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "order %s not found", id)
}
