// Package inventory is the inventory service's domain: products and their
// stock, the catalogue search, carts, and the reservations the checkout
// takes on stock.
//
// The stock rules live in the database as much as in Go: a product row
// carries on_hand and reserved, a CHECK keeps 0 <= reserved <= on_hand, and
// every change to the counters is one conditional UPDATE that either
// applies or touches no row — never a read followed by a write. A
// reservation's status leaves "held" once, by an UPDATE guarded with
// status = 'held', so commit, release and expiry each happen at most once
// and exclude each other.
//
// Inputs arrive validated and normalized (see CheckName and friends, which
// the HTTP boundary calls); the rules here decide, and store.go talks SQL.
package inventory

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Config is the inventory part of the service's configuration.
type Config struct {
	// ReservationTTL is how long a reservation is held when the request
	// does not say: long enough for a payment, short enough that stock
	// abandoned by a crashed checkout returns to sale soon.
	ReservationTTL time.Duration `env:"INVENTORY_RESERVATION_TTL" default:"15m"`
	// SweepInterval is how often expired reservations are looked for: an
	// expired reservation keeps its stock at most this long past its TTL.
	SweepInterval time.Duration `env:"INVENTORY_SWEEP_INTERVAL" default:"5s"`
	// SweepBatch bounds the reservations one sweep transaction expires, so
	// a backlog is returned in short transactions.
	SweepBatch int `env:"INVENTORY_SWEEP_BATCH" default:"100"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if c.ReservationTTL < time.Second || c.ReservationTTL > MaxReservationTTL {
		errs = append(errs, fmt.Errorf("INVENTORY_RESERVATION_TTL must be between 1s and %s", MaxReservationTTL))
	}
	if c.SweepInterval <= 0 || c.SweepInterval > time.Hour {
		errs = append(errs, errors.New("INVENTORY_SWEEP_INTERVAL must be positive and at most 1h"))
	}
	if c.SweepBatch < 1 || c.SweepBatch > 10000 {
		errs = append(errs, errors.New("INVENTORY_SWEEP_BATCH must be between 1 and 10000"))
	}
	return errors.Join(errs...)
}

// Service applies the rules of products, carts and reservations.
type Service struct {
	pool *pgxpool.Pool
	cfg  Config
	log  hclog.Logger
}

// NewService returns the service.
func NewService(pool *pgxpool.Pool, cfg Config, log hclog.Logger) *Service {
	return &Service{pool: pool, cfg: cfg, log: log.Named("inventory")}
}

// Money is an amount of a currency's minor units (cents, yen).
type Money struct {
	Amount   int64
	Currency string
}

// Status is whether a product is on sale.
type Status string

// The statuses. Archived is final: the product leaves the catalogue and
// carts flag it, but it stays readable by id because orders refer to it.
const (
	Active   Status = "active"
	Archived Status = "archived"
)

// Product is something a seller has put on sale, with its stock.
type Product struct {
	ID          uuid.UUID
	SellerID    uuid.UUID
	Name        string
	Description string
	Price       Money
	// OnHand units are in the warehouse; Reserved of them are promised to
	// orders being checked out.
	OnHand   int
	Reserved int
	Status   Status
	// Version counts changes of name, description, price and status: the
	// product's ETag. Stock counters are outside it (they move with every
	// checkout, and a seller editing a description must not get a 412
	// because someone bought one).
	Version    int
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ArchivedAt *time.Time
}

// Available is what can be sold now.
func (p Product) Available() int { return p.OnHand - p.Reserved }

func errProductNotFound(id uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "product %s not found", id)
}

// Problem codes of the conflicts this package reports, the last segment of
// a problem's type, so clients can branch on them.
const (
	CodeOutOfStock           = "out-of-stock"
	CodeBelowReserved        = "below-reserved"
	CodeProductArchived      = "product-archived"
	CodeCartFull             = "cart-full"
	CodeReservationMismatch  = "reservation-mismatch"
	CodeReservationExpired   = "reservation-expired"
	CodeReservationReleased  = "reservation-released"
	CodeReservationCommitted = "reservation-committed"
	CodeReservationHeld      = "reservation-held"
	CodeReservationRestocked = "reservation-restocked"
)
