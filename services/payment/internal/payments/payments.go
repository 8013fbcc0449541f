// Package payments is the payment service's domain: payments of orders by
// card and their refunds, made through a card processor so that no caller
// retry, concurrent duplicate or processor timeout can ever charge a card
// twice.
//
// The rules, in the order a request meets them:
//   - A request's idempotency key and fingerprint are stored (claimed) in
//     their own committed transaction, together with the pending payment,
//     before the processor is called; the final answer is stored with the
//     key and replayed (idempotency.go).
//   - The processor is called with a key derived from the payment id, so
//     every attempt of one payment names one charge at the processor.
//   - An unknown outcome (a timeout, a cut connection) leaves the payment
//     pending; the reconciler asks the processor by key until it knows
//     (reconcile.go).
//   - Refunds reserve their amount with a conditional update, so their sum
//     never exceeds what was captured (refund.go).
//
// Card numbers and CVCs are never stored nor logged: a Card formats itself
// as its brand and last 4 digits, and only those and the expiry are kept.
package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Status is where a payment stands.
type Status string

// The statuses of a payment: pending → succeeded | failed; succeeded →
// partially_refunded → refunded.
const (
	Pending           Status = "pending"
	Succeeded         Status = "succeeded"
	Failed            Status = "failed"
	PartiallyRefunded Status = "partially_refunded"
	Refunded          Status = "refunded"
)

// Final reports whether the processor's answer about the charge is known.
func (s Status) Final() bool { return s != Pending }

// The failure codes of a failed payment, also the problem types of the 402
// answers, so callers can branch on them.
const (
	CodeCardDeclined      = "card-declined"
	CodeInsufficientFunds = "insufficient-funds"
	CodeProcessingError   = "processing-error"
	// CodeNotProcessed is a payment the processor never received: the
	// reconciler found no charge for its key long after the last attempt.
	CodeNotProcessed = "not-processed"
)

// Payment is one charge of a card for one order.
type Payment struct {
	ID       uuid.UUID
	OrderID  uuid.UUID
	Amount   int64
	Currency string
	Status   Status
	Card     CardSummary
	// ProcessorReference is the processor's charge id, once known.
	ProcessorReference string
	FailureCode        string
	FailureMessage     string
	// AmountRefunded is the sum of the succeeded refunds.
	AmountRefunded int64
	Refunds        []Refund
	CreatedAt      time.Time
	UpdatedAt      time.Time

	processorKey   string
	refundReserved int64
	attempts       int
}

// CardSummary is all that is kept of a card.
type CardSummary struct {
	Brand    string
	Last4    string
	ExpMonth int
	ExpYear  int
}

// RefundStatus is where a refund stands.
type RefundStatus string

// The statuses of a refund.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
)

// Refund gives back all or part of a captured payment.
type Refund struct {
	ID                 uuid.UUID
	PaymentID          uuid.UUID
	Amount             int64
	Currency           string
	Status             RefundStatus
	ProcessorReference string
	FailureCode        string
	FailureMessage     string
	CreatedAt          time.Time
	UpdatedAt          time.Time

	processorKey string
	attempts     int
}

// Config is the payments part of the service's configuration.
type Config struct {
	// FingerprintKey keys the hashes that stand for the card number and CVC
	// in a request's fingerprint: without the key, a fingerprint cannot be
	// brute-forced back into a card number. Changing it makes retries of
	// requests in flight look like other requests (422) until they expire.
	FingerprintKey string `env:"PAYMENT_FINGERPRINT_KEY" required:"true" secret:"true"`
	// IdempotencyLease is how long a request holds its key while it calls
	// the processor; a duplicate meanwhile is 409. A holder that died is
	// taken over after it. It must outlast PAYMENT_PROCESSOR_TIMEOUT.
	IdempotencyLease time.Duration `env:"PAYMENT_IDEMPOTENCY_LEASE" default:"30s"`
	// IdempotencyRetention is how long keys are kept; at least 24h.
	IdempotencyRetention time.Duration `env:"PAYMENT_IDEMPOTENCY_RETENTION" default:"48h"`
	// CleanupInterval is how often expired keys are deleted.
	CleanupInterval time.Duration `env:"PAYMENT_IDEMPOTENCY_CLEANUP_INTERVAL" default:"10m"`
	// ReconcileInterval is how often the reconciler asks the processor
	// about pending payments and refunds (each at most once per interval).
	ReconcileInterval time.Duration `env:"PAYMENT_RECONCILE_INTERVAL" default:"5s"`
	// ReconcileBatch bounds the payments (and the refunds) asked about per
	// round.
	ReconcileBatch int `env:"PAYMENT_RECONCILE_BATCH" default:"20"`
	// GiveUpAfter is how long after its last attempt a pending payment or
	// refund that the processor has no record of is marked failed
	// (not-processed): the processor never received it, and only a retry
	// with the card could send it again.
	GiveUpAfter time.Duration `env:"PAYMENT_RECONCILE_GIVE_UP_AFTER" default:"15m"`
}

// MinRetention is the shortest time idempotency keys are kept.
const MinRetention = 24 * time.Hour

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if len(c.FingerprintKey) < 32 {
		errs = append(errs, errors.New("PAYMENT_FINGERPRINT_KEY must be at least 32 characters (a random secret)"))
	}
	if c.IdempotencyLease < time.Second {
		errs = append(errs, errors.New("PAYMENT_IDEMPOTENCY_LEASE must be at least 1s"))
	}
	if c.IdempotencyRetention < MinRetention {
		errs = append(errs, fmt.Errorf("PAYMENT_IDEMPOTENCY_RETENTION must be at least %s: callers may retry for a day", MinRetention))
	}
	if c.CleanupInterval <= 0 || c.ReconcileInterval <= 0 {
		errs = append(errs, errors.New("PAYMENT_IDEMPOTENCY_CLEANUP_INTERVAL and PAYMENT_RECONCILE_INTERVAL must be positive"))
	}
	if c.ReconcileBatch < 1 || c.ReconcileBatch > 1000 {
		errs = append(errs, errors.New("PAYMENT_RECONCILE_BATCH must be between 1 and 1000"))
	}
	if c.GiveUpAfter <= c.IdempotencyLease {
		// Otherwise a payment still being sent could be given up on.
		errs = append(errs, errors.New("PAYMENT_RECONCILE_GIVE_UP_AFTER must be longer than PAYMENT_IDEMPOTENCY_LEASE"))
	}
	return errors.Join(errs...)
}

// Service applies the rules of payments and refunds.
type Service struct {
	pool  *pgxpool.Pool
	proc  Processor
	cfg   Config
	log   hclog.Logger
	fpKey []byte
}

// NewService returns the service; proc is the card processor.
func NewService(pool *pgxpool.Pool, proc Processor, cfg Config, log hclog.Logger) *Service {
	return &Service{pool: pool, proc: proc, cfg: cfg, log: log.Named("payments"), fpKey: []byte(cfg.FingerprintKey)}
}

// Get returns payment id with its refunds.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Payment, error) {
	return getPaymentWithRefunds(ctx, s.pool, id)
}

// MaxOrdersPerLookup bounds the orders ByOrders reads at once.
const MaxOrdersPerLookup = 100

// ByOrders returns the payments of the orders, in the order of orderIDs:
// at most one each, and none for an order that has none, so that an
// order absent from the answer definitely has no payment.
func (s *Service) ByOrders(ctx context.Context, orderIDs []uuid.UUID) ([]Payment, error) {
	if len(orderIDs) == 0 || len(orderIDs) > MaxOrdersPerLookup {
		return nil, apierr.InvalidFields(apierr.FieldError{Field: "order_id", Detail: fmt.Sprintf("must name 1 to %d orders", MaxOrdersPerLookup)})
	}
	list, err := listPaymentsByOrders(ctx, s.pool, orderIDs)
	if err != nil {
		return nil, err
	}
	byOrder := make(map[uuid.UUID]Payment, len(list))
	for _, p := range list {
		byOrder[p.OrderID] = p
	}
	out := make([]Payment, 0, len(list))
	for _, id := range orderIDs {
		if p, ok := byOrder[id]; ok {
			out = append(out, p)
			delete(byOrder, id) // an id asked twice is answered once
		}
	}
	return out, nil
}

// Cursor is where a walk of the payments stopped: the creation time and
// id of the last payment served.
type Cursor struct {
	At time.Time
	ID uuid.UUID
}

// Since returns up to limit payments created at or after since, oldest
// first, starting after the cursor (nil: from the start), and the cursor
// of the next page (nil on the last). It is how the aggregator's
// reconciliation walks the recent past after a restore.
func (s *Service) Since(ctx context.Context, since time.Time, after *Cursor, limit int) ([]Payment, *Cursor, error) {
	list, err := listPaymentsSince(ctx, s.pool, since, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(list) <= limit {
		return list, nil, nil
	}
	list = list[:limit]
	last := list[len(list)-1]
	return list, &Cursor{At: last.CreatedAt, ID: last.ID}, nil
}

// processorKey is the idempotency key a payment or refund is sent to the
// processor with: derived from its id, so that every attempt, whoever makes
// it, names the same charge.
func processorKey(kind string, id uuid.UUID) string { return kind + "-" + id.String() }

func errPaymentNotFound(id uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "payment %s not found", id)
}
