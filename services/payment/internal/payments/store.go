package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// The SQL of the payments domain. Durations travel as microseconds (as the
// outbox's do) so that PostgreSQL's clock sets every deadline and instances
// with skewed clocks agree.

// constraints are the words a client reads when a write breaks the schema
// (a second payment for an order is insertPayment's to say, with the
// order's id). The HTTP boundary checks every value first, so these answer
// a caller that skipped it, or a bug the log explains.
var constraints = pgdb.Constraints{
	"refunds_payment_id_fkey": apierr.E(apierr.Conflict, errors.New("the payment to refund does not exist")),
	"":                        apierr.E(apierr.Conflict, errors.New("the change breaks a rule of the payment data; nothing was saved")),
}

const paymentColumns = `id, order_id, amount, currency, status, card_brand, card_last4,
	card_exp_month, card_exp_year, processor_key, coalesce(processor_reference, ''),
	coalesce(failure_code, ''), coalesce(failure_message, ''), amount_refunded,
	refund_reserved, attempts, created_at, updated_at`

func scanPayment(row pgx.Row) (Payment, error) {
	var p Payment
	err := row.Scan(&p.ID, &p.OrderID, &p.Amount, &p.Currency, &p.Status, &p.Card.Brand, &p.Card.Last4,
		&p.Card.ExpMonth, &p.Card.ExpYear, &p.processorKey, &p.ProcessorReference,
		&p.FailureCode, &p.FailureMessage, &p.AmountRefunded,
		&p.refundReserved, &p.attempts, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

const refundColumns = `r.id, r.payment_id, r.amount, p.currency, r.status, r.processor_key,
	coalesce(r.processor_reference, ''), coalesce(r.failure_code, ''), coalesce(r.failure_message, ''),
	r.attempts, r.created_at, r.updated_at`

func scanRefund(row pgx.Row) (Refund, error) {
	var r Refund
	err := row.Scan(&r.ID, &r.PaymentID, &r.Amount, &r.Currency, &r.Status, &r.processorKey,
		&r.ProcessorReference, &r.FailureCode, &r.FailureMessage, &r.attempts, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

const (
	selectPayment       = `SELECT ` + paymentColumns + ` FROM payments WHERE id = $1`
	selectPaymentForUpd = selectPayment + ` FOR UPDATE`

	selectRefunds = `SELECT ` + refundColumns + ` FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.payment_id = $1 ORDER BY r.created_at, r.id`
	selectRefundsOfMany = `SELECT ` + refundColumns + ` FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.payment_id = ANY($1) ORDER BY r.created_at, r.id`

	selectPaymentsByOrders = `SELECT ` + paymentColumns + ` FROM payments WHERE order_id = ANY($1)`

	// The walk of the payments created since a time, oldest first, served
	// by the index on (created_at, id): the first page, then the pages
	// after a cursor. Two statements rather than one with "$2 IS NULL OR",
	// whose generic plan would not use the index.
	selectPaymentsSince = `SELECT ` + paymentColumns + ` FROM payments
WHERE created_at >= $1
ORDER BY created_at, id
LIMIT $2`
	selectPaymentsSinceAfter = `SELECT ` + paymentColumns + ` FROM payments
WHERE created_at >= $1 AND (created_at, id) > ($2, $3)
ORDER BY created_at, id
LIMIT $4`
	selectRefund       = `SELECT ` + refundColumns + ` FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1`
	selectRefundForUpd = selectRefund + ` FOR UPDATE OF r`

	// The first attempt is in flight until the lease ends: the reconciler
	// leaves the payment alone until then.
	insertPaymentSQL = `
INSERT INTO payments (id, order_id, amount, currency, card_brand, card_last4, card_exp_month,
	card_exp_year, processor_key, next_check_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10::bigint * interval '1 microsecond')
RETURNING ` + paymentColumns

	// Another attempt of a pending payment (a retry with the same key).
	countPaymentAttempt = `
UPDATE payments SET attempts = attempts + 1, last_attempt_at = now(),
	next_check_at = now() + $2::bigint * interval '1 microsecond'
WHERE id = $1 AND status = 'pending'`

	// Settles a pending payment; no row when it was settled already (by the
	// reconciler or a retry), whose outcome then stands: both learnt it from
	// the processor.
	settlePaymentSQL = `
UPDATE payments SET status = $2, processor_reference = nullif($3, ''),
	failure_code = nullif($4, ''), failure_message = nullif($5, ''), updated_at = now()
WHERE id = $1 AND status = 'pending'`

	// Gives up on a payment the processor never received, unless another
	// attempt started since the reconciler looked ($2) or is in flight.
	giveUpPaymentSQL = `
UPDATE payments p SET status = 'failed', failure_code = $3, failure_message = $4, updated_at = now()
WHERE p.id = $1 AND p.status = 'pending' AND p.attempts = $2
	AND p.last_attempt_at < now() - $5::bigint * interval '1 microsecond'
	AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
		WHERE k.payment_id = p.id AND k.refund_id IS NULL AND k.locked_until > now())`

	// An unknown outcome: the reconciler should ask soon.
	scheduleCheckPayment = `UPDATE payments SET next_check_at = now() WHERE id = $1 AND status = 'pending'`
	scheduleCheckRefund  = `UPDATE refunds SET next_check_at = now() WHERE id = $1 AND status = 'pending'`

	// Reserves a refund's amount: a conditional update, so concurrent
	// refunds can never together exceed what was captured.
	reserveRefundSQL = `
UPDATE payments SET refund_reserved = refund_reserved + $2, updated_at = now()
WHERE id = $1 AND status IN ('succeeded', 'partially_refunded')
	AND amount - amount_refunded - refund_reserved >= $2
RETURNING ` + paymentColumns

	insertRefundSQL = `
INSERT INTO refunds (id, payment_id, amount, processor_key, next_check_at)
VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 microsecond')`

	countRefundAttempt = `
UPDATE refunds SET attempts = attempts + 1, last_attempt_at = now(),
	next_check_at = now() + $2::bigint * interval '1 microsecond'
WHERE id = $1 AND status = 'pending'`

	// Settles a pending refund and moves its amount out of the reservation:
	// into amount_refunded on success (and the payment's status follows),
	// back to the refundable amount on failure. One statement, so the two
	// rows cannot disagree.
	settleRefundSQL = `
WITH r AS (
	UPDATE refunds SET status = $2, processor_reference = nullif($3, ''),
		failure_code = nullif($4, ''), failure_message = nullif($5, ''), updated_at = now()
	WHERE id = $1 AND status = 'pending'
	RETURNING payment_id, amount, status
)
UPDATE payments p SET
	refund_reserved = p.refund_reserved - r.amount,
	amount_refunded = p.amount_refunded + CASE WHEN r.status = 'succeeded' THEN r.amount ELSE 0 END,
	status = CASE WHEN r.status <> 'succeeded' THEN p.status
		WHEN p.amount_refunded + r.amount = p.amount THEN 'refunded'
		ELSE 'partially_refunded' END,
	updated_at = now()
FROM r WHERE p.id = r.payment_id`

	givePendingRefundUpSQL = `
WITH r AS (
	UPDATE refunds r SET status = 'failed', failure_code = $3, failure_message = $4, updated_at = now()
	WHERE r.id = $1 AND r.status = 'pending' AND r.attempts = $2
		AND r.last_attempt_at < now() - $5::bigint * interval '1 microsecond'
		AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.refund_id = r.id AND k.locked_until > now())
	RETURNING payment_id, amount
)
UPDATE payments p SET refund_reserved = p.refund_reserved - r.amount, updated_at = now()
FROM r WHERE p.id = r.payment_id`
)

func getPayment(ctx context.Context, q pgdb.Querier, id uuid.UUID, forUpdate bool) (Payment, error) {
	sql := selectPayment
	if forUpdate {
		sql = selectPaymentForUpd
	}
	p, err := scanPayment(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Payment{}, errPaymentNotFound(id)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	return p, nil
}

func getPaymentWithRefunds(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Payment, error) {
	p, err := getPayment(ctx, q, id, false)
	if err != nil {
		return Payment{}, err
	}
	return withRefunds(ctx, q, p)
}

func withRefunds(ctx context.Context, q pgdb.Querier, p Payment) (Payment, error) {
	rows, err := q.Query(ctx, selectRefunds, p.ID)
	if err != nil {
		return Payment{}, fmt.Errorf("list refunds of %s: %w", p.ID, err)
	}
	p.Refunds, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Refund, error) { return scanRefund(row) })
	if err != nil {
		return Payment{}, fmt.Errorf("list refunds of %s: %w", p.ID, err)
	}
	return p, nil
}

// listPaymentsByOrders reads the payments of the orders, with their
// refunds; orders without one are absent.
func listPaymentsByOrders(ctx context.Context, q pgdb.Querier, orderIDs []uuid.UUID) ([]Payment, error) {
	list, err := collectPayments(q.Query(ctx, selectPaymentsByOrders, orderIDs))
	if err != nil {
		return nil, fmt.Errorf("list payments of orders: %w", err)
	}
	return list, withRefundsOfMany(ctx, q, list)
}

// listPaymentsSince reads up to limit payments created at or after since,
// oldest first, after the cursor (nil: from the start), with their refunds.
func listPaymentsSince(ctx context.Context, q pgdb.Querier, since time.Time, after *Cursor, limit int) ([]Payment, error) {
	var (
		list []Payment
		err  error
	)
	if after == nil {
		list, err = collectPayments(q.Query(ctx, selectPaymentsSince, since, limit))
	} else {
		list, err = collectPayments(q.Query(ctx, selectPaymentsSinceAfter, since, after.At, after.ID, limit))
	}
	if err != nil {
		return nil, fmt.Errorf("list payments since %s: %w", since.Format(time.RFC3339), err)
	}
	return list, withRefundsOfMany(ctx, q, list)
}

func collectPayments(rows pgx.Rows, err error) ([]Payment, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Payment, error) { return scanPayment(row) })
}

// withRefundsOfMany fills the refunds of every payment of list in one
// query.
func withRefundsOfMany(ctx context.Context, q pgdb.Querier, list []Payment) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(list))
	at := make(map[uuid.UUID]int, len(list))
	for i := range list {
		ids[i], at[list[i].ID] = list[i].ID, i
		list[i].Refunds = []Refund{}
	}
	rows, err := q.Query(ctx, selectRefundsOfMany, ids)
	if err != nil {
		return fmt.Errorf("list refunds: %w", err)
	}
	refunds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Refund, error) { return scanRefund(row) })
	if err != nil {
		return fmt.Errorf("list refunds: %w", err)
	}
	for _, r := range refunds {
		p := &list[at[r.PaymentID]]
		p.Refunds = append(p.Refunds, r)
	}
	return nil
}

func getRefund(ctx context.Context, q pgdb.Querier, id uuid.UUID, forUpdate bool) (Refund, error) {
	sql := selectRefund
	if forUpdate {
		sql = selectRefundForUpd
	}
	r, err := scanRefund(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Refund{}, apierr.Errorf(apierr.NotFound, "refund %s not found", id)
	}
	if err != nil {
		return Refund{}, fmt.Errorf("get refund %s: %w", id, err)
	}
	return r, nil
}

// insertPayment creates a pending payment; an order that has one already
// is a Conflict naming it.
func insertPayment(ctx context.Context, q pgdb.Querier, p Payment, lease time.Duration) (Payment, error) {
	created, err := scanPayment(q.QueryRow(ctx, insertPaymentSQL, p.ID, p.OrderID, p.Amount, p.Currency,
		p.Card.Brand, p.Card.Last4, p.Card.ExpMonth, p.Card.ExpYear, p.processorKey, lease.Microseconds()))
	if name, _ := pgdb.Violated(err); name == "payments_order_id_key" {
		exists := apierr.WithCode(apierr.Conflict, "payment-exists",
			fmt.Errorf("order %s already has a payment; read it with GET /internal/payments?order_id=%s", p.OrderID, p.OrderID))
		return Payment{}, fmt.Errorf("%w: %w", exists, err)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("insert payment: %w", constraints.Map(err))
	}
	return created, nil
}

func exec(ctx context.Context, q pgdb.Querier, what, sql string, args ...any) (bool, error) {
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, constraints.Map(err))
	}
	return tag.RowsAffected() > 0, nil
}

// The idempotency keys.

const (
	// Claims a new key; no row when the key exists.
	claimKeySQL = `
INSERT INTO idempotency_keys (key, operation, fingerprint, payment_id, refund_id, claim_token, locked_until)
VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 microsecond')
ON CONFLICT (key) DO NOTHING
RETURNING key`

	selectKeyForUpd = `
SELECT operation, fingerprint, payment_id, refund_id, response_status, response_body,
	coalesce(locked_until > now(), false)
FROM idempotency_keys WHERE key = $1 FOR UPDATE`

	// Takes over a released (or stale) key.
	takeOverKeySQL = `
UPDATE idempotency_keys SET claim_token = $2, locked_until = now() + $3::bigint * interval '1 microsecond'
WHERE key = $1 AND response_status IS NULL`

	// Releases a key without an answer (the outcome is unknown): the next
	// request with it tries again, at once.
	releaseKeySQL = `
UPDATE idempotency_keys SET claim_token = NULL, locked_until = NULL
WHERE key = $1 AND claim_token = $2`

	// Stores the final answer, if the request still holds the key.
	completeKeySQL = `
UPDATE idempotency_keys SET response_status = $3, response_body = $4, completed_at = now(),
	claim_token = NULL, locked_until = NULL
WHERE key = $1 AND claim_token = $2 AND response_status IS NULL`

	deleteExpiredKeys = `
DELETE FROM idempotency_keys
WHERE created_at < now() - $1::bigint * interval '1 microsecond'
	AND (locked_until IS NULL OR locked_until <= now())`
)

// storedKey is an idempotency key found claimed already.
type storedKey struct {
	operation   string
	fingerprint []byte
	paymentID   uuid.UUID
	refundID    *uuid.UUID
	response    *Response
	inFlight    bool
}

func getKeyForUpdate(ctx context.Context, q pgdb.Querier, key string) (storedKey, error) {
	var (
		k      storedKey
		status *int16
		body   *string
	)
	err := q.QueryRow(ctx, selectKeyForUpd, key).Scan(&k.operation, &k.fingerprint, &k.paymentID, &k.refundID, &status, &body, &k.inFlight)
	if err != nil {
		return storedKey{}, fmt.Errorf("get idempotency key: %w", err)
	}
	if status != nil && body != nil {
		k.response = &Response{Status: int(*status), Body: []byte(*body)}
	}
	return k, nil
}

// The reconciler's queues: due pending payments (refunds) whose key is not
// in flight, each pushed back by an interval as it is taken, so that
// concurrent reconcilers (one per instance) take disjoint rows.
const (
	claimDuePayments = `
UPDATE payments SET next_check_at = now() + $1::bigint * interval '1 microsecond'
WHERE id IN (
	SELECT p.id FROM payments p
	WHERE p.status = 'pending' AND p.next_check_at <= now()
		AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
			WHERE k.payment_id = p.id AND k.refund_id IS NULL AND k.locked_until > now())
	ORDER BY p.next_check_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)
RETURNING id, processor_key, attempts`

	claimDueRefunds = `
UPDATE refunds SET next_check_at = now() + $1::bigint * interval '1 microsecond'
WHERE id IN (
	SELECT r.id FROM refunds r
	WHERE r.status = 'pending' AND r.next_check_at <= now()
		AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.refund_id = r.id AND k.locked_until > now())
	ORDER BY r.next_check_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)
RETURNING id, processor_key, attempts`
)

// due is a pending payment or refund the reconciler asks about.
type due struct {
	id           uuid.UUID
	processorKey string
	attempts     int
}

func claimDue(ctx context.Context, q pgdb.Querier, sql string, interval time.Duration, limit int) ([]due, error) {
	rows, err := q.Query(ctx, sql, interval.Microseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim due: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (due, error) {
		var d due
		err := row.Scan(&d.id, &d.processorKey, &d.attempts)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim due: %w", err)
	}
	return out, nil
}

// Metrics.

// The pending payments and the age of the oldest: the partial index on
// next_check_at WHERE status = 'pending' (the reconciler's queue) holds
// exactly those rows, so the read costs the pending payments, never the
// whole table.
const selectPending = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM payments WHERE status = 'pending'`

// countPending reads how many payments are pending and, in seconds, for
// how long the oldest has been (0 when none is).
func countPending(ctx context.Context, q pgdb.Querier) (n int64, oldest float64, err error) {
	if err := q.QueryRow(ctx, selectPending).Scan(&n, &oldest); err != nil {
		return 0, 0, fmt.Errorf("count pending payments: %w", err)
	}
	return n, oldest, nil
}
