package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/backoff"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// RelayConfig is the relay's part of a service's configuration.
type RelayConfig struct {
	// PollInterval bounds how late a message is sent when its notification
	// was missed (the listening connection was down) and how late a retry
	// runs after its backoff has passed.
	PollInterval time.Duration `env:"OUTBOX_POLL_INTERVAL" default:"1s"`
	// BatchSize is how many messages one claim takes; they are handled
	// concurrently.
	BatchSize int `env:"OUTBOX_BATCH_SIZE" default:"10"`
	// HandlerTimeout bounds one delivery.
	HandlerTimeout time.Duration `env:"OUTBOX_HANDLER_TIMEOUT" default:"15s"`
	// Lease is how long a claim keeps other relays off a message. It must
	// outlast HandlerTimeout; it is also how long a message waits after its
	// relay died mid-delivery before another relay sends it again.
	Lease time.Duration `env:"OUTBOX_LEASE" default:"1m"`
	// BackoffBase is the delay after the first failure; it doubles with each
	// failure up to BackoffMax, with jitter.
	BackoffBase time.Duration `env:"OUTBOX_BACKOFF_BASE" default:"1s"`
	BackoffMax  time.Duration `env:"OUTBOX_BACKOFF_MAX" default:"10m"`
	// MaxAttempts is when a message that keeps failing is marked dead. The
	// default, with the default backoff, keeps retrying for about a day, so
	// an outage of the provider loses nothing.
	MaxAttempts int `env:"OUTBOX_MAX_ATTEMPTS" default:"150"`
}

// Validate implements config.Validator.
func (c *RelayConfig) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("OUTBOX_POLL_INTERVAL must be positive"))
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		errs = append(errs, errors.New("OUTBOX_BATCH_SIZE must be between 1 and 1000"))
	}
	if c.HandlerTimeout <= 0 {
		errs = append(errs, errors.New("OUTBOX_HANDLER_TIMEOUT must be positive"))
	}
	if c.Lease <= c.HandlerTimeout {
		// Otherwise a slow but live delivery loses its claim and a second
		// relay sends the same message concurrently.
		errs = append(errs, errors.New("OUTBOX_LEASE must be longer than OUTBOX_HANDLER_TIMEOUT"))
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		errs = append(errs, errors.New("OUTBOX_BACKOFF_BASE must be positive and at most OUTBOX_BACKOFF_MAX"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("OUTBOX_MAX_ATTEMPTS must be at least 1"))
	}
	return errors.Join(errs...)
}

// Delivery is a claimed message as a handler receives it.
type Delivery struct {
	Message
	// Attempt counts claims of this message, this one included: 1 on the
	// first delivery, more on a retry or after a relay died mid-delivery.
	Attempt    int
	EnqueuedAt time.Time
}

// Handler delivers one message. Returning nil marks it sent; an error
// schedules a retry with backoff, unless wrapped by Permanent (or the
// attempts are used up), which marks it dead. A handler must be idempotent
// on d.ID or pass it on so the receiver can be: a message may be delivered
// more than once.
type Handler func(ctx context.Context, d Delivery) error

// Relay claims due messages of its topics and hands them to their handlers.
// Any number of relays may run on one database: a claim is a lease taken
// with FOR UPDATE SKIP LOCKED, so no two relays hold a message at once.
type Relay struct {
	pool     *pgxpool.Pool
	cfg      RelayConfig
	handlers map[string]Handler
	topics   []string
	log      hclog.Logger
	wake     chan struct{}
	// deliveries counts this relay's outcomes (Collector).
	deliveries *prometheus.CounterVec
}

// NewRelay returns a relay delivering the messages of each topic in
// handlers with that topic's handler. Messages of other topics are left for
// other relays.
func NewRelay(pool *pgxpool.Pool, cfg RelayConfig, handlers map[string]Handler, log hclog.Logger) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	if len(handlers) == 0 {
		return nil, errors.New("outbox relay: no handlers")
	}
	r := &Relay{
		pool:       pool,
		cfg:        cfg,
		handlers:   make(map[string]Handler, len(handlers)),
		log:        log.Named("outbox"),
		wake:       make(chan struct{}, 1),
		deliveries: newDeliveries(),
	}
	for topic, h := range handlers {
		if topic == "" || h == nil {
			return nil, fmt.Errorf("outbox relay: topic %q needs a name and a handler", topic)
		}
		r.handlers[topic] = h
		r.topics = append(r.topics, topic)
		for _, outcome := range []string{"sent", "retry", "dead"} {
			r.deliveries.WithLabelValues(topic, outcome) // every series from the start, at 0
		}
	}
	slices.Sort(r.topics)
	return r, nil
}

// Run delivers messages until ctx is done, then returns nil once the
// deliveries in flight have finished and been recorded (each is bounded by
// HandlerTimeout), so a graceful stop does not cause a duplicate. Database
// errors are logged and retried: Run does not give up.
func (r *Relay) Run(ctx context.Context) error {
	lctx, stopListening := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.listen(lctx) })
	defer func() {
		stopListening()
		wg.Wait()
	}()
	r.log.Info("relay started", "topics", r.topics, "poll_interval", r.cfg.PollInterval.String())

	timer := time.NewTimer(r.cfg.PollInterval)
	defer timer.Stop()
	failures := 0
	for ctx.Err() == nil {
		wait := r.cfg.PollInterval
		n, err := r.runBatch(ctx)
		switch {
		case err != nil:
			// The database is away: back off so an outage does not log a
			// line per poll, and keep trying.
			failures++
			wait = backoff.Delay(failures+1, r.cfg.PollInterval, maxClaimBackoff)
			r.log.Warn("claim failed; retrying", "error", err, "retry_in", wait.String(), "failures", failures)
		case n == r.cfg.BatchSize:
			failures = 0
			continue // more may be due right now
		default:
			failures = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-timer.C:
		}
	}
	r.log.Info("relay stopped")
	return nil
}

// maxClaimBackoff caps the wait between claims while the database fails.
const maxClaimBackoff = 30 * time.Second

// nudge wakes Run without blocking; one pending wake-up is enough.
func (r *Relay) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// listen keeps a dedicated connection LISTENing for Enqueue's
// notifications, reconnecting with backoff. Polling covers the gaps.
func (r *Relay) listen(ctx context.Context) {
	wait := 100 * time.Millisecond
	for {
		listened, err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			wait = 100 * time.Millisecond
		}
		r.log.Warn("notification listener lost; polling until it reconnects", "error", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// listenOnce connects outside the pool (a listener would hold a pool
// connection for good), listens and nudges Run for every notification of one
// of its topics, until the connection or ctx ends.
func (r *Relay) listenOnce(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	// Whatever was enqueued while nobody listened is due now.
	r.nudge()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		if _, ok := r.handlers[n.Payload]; ok {
			r.nudge()
		}
	}
}

// claimBatch leases up to $4 due messages of the relay's topics, each the
// oldest unfinished one of its ordering key. SKIP LOCKED
// lets concurrent relays take disjoint rows without waiting for each other;
// the lease (claimed_until) keeps the rows off-limits after this statement
// commits, and attempts counts the claim before anything is sent.
const claimBatch = `
UPDATE outbox_messages
SET attempts = attempts + 1,
	claimed_until = now() + $2::bigint * interval '1 microsecond',
	claim_token = $3
WHERE id IN (
	SELECT id FROM outbox_messages m
	WHERE sent_at IS NULL AND dead_at IS NULL
		AND next_attempt_at <= now()
		AND (claimed_until IS NULL OR claimed_until <= now())
		AND topic = ANY($1)
		AND (ordering_key IS NULL OR NOT EXISTS (
			SELECT 1 FROM outbox_messages e
			WHERE e.ordering_key = m.ordering_key
				AND e.sent_at IS NULL AND e.dead_at IS NULL
				AND (e.created_at, e.id) < (m.created_at, m.id)))
	ORDER BY next_attempt_at
	LIMIT $4
	FOR UPDATE SKIP LOCKED
)
RETURNING id, topic, payload, attempts, created_at, coalesce(request_id, '')`

// markSent and markFailed apply only while the relay still holds its claim:
// a relay that outlived its lease must not overwrite the outcome of the relay
// that took the message over.
const (
	markSent = `
UPDATE outbox_messages
SET sent_at = now(), claimed_until = NULL, claim_token = NULL
WHERE id = $1 AND claim_token = $2`

	markFailed = `
UPDATE outbox_messages
SET last_error = $3,
	next_attempt_at = now() + $4::bigint * interval '1 microsecond',
	dead_at = CASE WHEN $5::boolean THEN now() END,
	claimed_until = NULL, claim_token = NULL
WHERE id = $1 AND claim_token = $2`
)

// maxErrorLen keeps last_error readable and the row small.
const maxErrorLen = 2000

// claimTimeout bounds one claim statement.
const claimTimeout = 10 * time.Second

// recordTimeout bounds writing a delivery's outcome, detached from Run's
// context so that a stop does not lose a success already achieved.
const recordTimeout = 5 * time.Second

// runBatch claims one batch and delivers it concurrently, returning the
// number claimed once every delivery is recorded. Claimed rows are always
// delivered and recorded, even when ctx ends meanwhile.
func (r *Relay) runBatch(ctx context.Context) (int, error) {
	// Detached from Run's context: a stop arriving between the claim's
	// commit and the reading of its rows would otherwise leave them claimed
	// but never delivered, waiting a whole lease.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	token := uuid.New()
	rows, err := r.pool.Query(cctx, claimBatch, r.topics, r.cfg.Lease.Microseconds(), token, r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := row.Scan(&d.ID, &d.Topic, &d.Payload, &d.Attempt, &d.EnqueuedAt, &d.RequestID)
		return d, err
	})
	if err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	var wg sync.WaitGroup
	for _, d := range batch {
		wg.Go(func() { r.deliver(ctx, token, d) })
	}
	wg.Wait()
	return len(batch), nil
}

// deliver runs the handler and records the outcome. The handler's context is
// detached from Run's: a stop lets the send in flight finish rather than cut
// it at an unknown point, which would cost a duplicate.
func (r *Relay) deliver(ctx context.Context, token uuid.UUID, d Delivery) {
	log := r.log.With("message_id", d.ID.String(), "topic", d.Topic, "attempt", d.Attempt)
	hctx := context.WithoutCancel(ctx)
	if d.RequestID != "" {
		// The delivery belongs to the request that queued it: its lines
		// and its calls (X-Request-ID) carry that request's id.
		log = log.With("request_id", d.RequestID)
		hctx = httpx.WithRequestID(hctx, d.RequestID)
		hctx = logging.WithFields(hctx, "request_id", d.RequestID)
	}
	hctx = logging.WithContext(hctx, log)
	hctx, cancel := context.WithTimeout(hctx, r.cfg.HandlerTimeout)
	err := r.call(hctx, d)
	cancel()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err == nil {
		if r.record(rctx, log, "send", markSent, d.ID, token) {
			r.counted(d.Topic, "sent")
			log.Info("message delivered", "queued_for", time.Since(d.EnqueuedAt).Round(time.Millisecond).String())
		}
		return
	}
	dead := IsPermanent(err) || d.Attempt >= r.cfg.MaxAttempts
	var delay time.Duration
	if !dead {
		delay = backoff.Delay(d.Attempt, r.cfg.BackoffBase, r.cfg.BackoffMax)
	}
	if !r.record(rctx, log, "failure", markFailed, d.ID, token, errorText(err), delay.Microseconds(), dead) {
		return
	}
	if dead {
		r.counted(d.Topic, "dead")
	} else {
		r.counted(d.Topic, "retry")
	}
	switch {
	case IsPermanent(err):
		log.Error("delivery failed permanently; message is dead and kept", "error", err)
	case dead:
		log.Error("delivery attempts used up; message is dead and kept", "max_attempts", r.cfg.MaxAttempts, "error", err)
	default:
		log.Warn("delivery failed; will retry", "retry_in", delay.String(), "error", err)
	}
}

// errorText is err as PostgreSQL text: at most maxErrorLen bytes, valid
// UTF-8, no NUL. PostgreSQL refuses anything else, and a failure that cannot
// be recorded would be retried at every lease expiry, forever.
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorLen {
		cut := maxErrorLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // not in the middle of a character
		}
		s = s[:cut]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// record runs one of the mark statements and reports whether it applied.
// When it does not, the message stays claimed until its lease expires and is
// then delivered again: a duplicate, never a loss.
func (r *Relay) record(ctx context.Context, log hclog.Logger, what, sql string, args ...any) bool {
	tag, err := r.pool.Exec(ctx, sql, args...)
	switch {
	case err != nil:
		log.Error("record "+what+" failed; the message will be delivered again when its lease expires", "error", err)
		return false
	case tag.RowsAffected() == 0:
		log.Warn("lease lost before the " + what + " was recorded; another relay owns the message now")
		return false
	}
	return true
}

// call runs the topic's handler, turning a panic into an error so that one
// bad message cannot take the relay down.
func (r *Relay) call(ctx context.Context, d Delivery) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return r.handlers[d.Topic](ctx, d)
}

// Stats counts the outbox's messages by state, for operators and dashboards.
type Stats struct {
	// Pending is every message neither sent nor dead: waiting, between
	// retries or in flight.
	Pending int64 `json:"pending"`
	// InFlight is the part of Pending claimed by a relay right now.
	InFlight int64 `json:"in_flight"`
	// Retrying is the part of Pending that failed at least once.
	Retrying int64 `json:"retrying"`
	Sent     int64 `json:"sent"`
	Dead     int64 `json:"dead"`
	// OldestPending is when the oldest pending message was enqueued; zero
	// when nothing is pending. A growing age means deliveries are stuck.
	OldestPending time.Time `json:"oldest_pending,omitzero"`
}

const selectStats = `
SELECT
	count(*) FILTER (WHERE sent_at IS NULL AND dead_at IS NULL),
	count(*) FILTER (WHERE sent_at IS NULL AND dead_at IS NULL AND claimed_until > now()),
	count(*) FILTER (WHERE sent_at IS NULL AND dead_at IS NULL AND attempts > 0 AND (claimed_until IS NULL OR claimed_until <= now())),
	count(*) FILTER (WHERE sent_at IS NOT NULL),
	count(*) FILTER (WHERE dead_at IS NOT NULL),
	min(created_at) FILTER (WHERE sent_at IS NULL AND dead_at IS NULL)
FROM outbox_messages`

// Stats counts the messages of every topic by state.
func (r *Relay) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	var oldest *time.Time
	err := r.pool.QueryRow(ctx, selectStats).Scan(&s.Pending, &s.InFlight, &s.Retrying, &s.Sent, &s.Dead, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	if oldest != nil {
		s.OldestPending = *oldest
	}
	return s, nil
}
