package payments

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/payment/migrations"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestConstraintViolationsHideTheDatabase breaks the schema's constraints
// as a race would (a second payment for an order) or behind the rules' back
// (an amount the HTTP boundary refuses first): the client reads the store's
// own words, never PostgreSQL's.
func TestConstraintViolationsHideTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, migrations.Set, outbox.Migrations)
	payment := func(order uuid.UUID, amount int64) Payment {
		id := uuid.New()
		return Payment{ID: id, OrderID: order, Amount: amount, Currency: "EUR", processorKey: processorKey("payment", id),
			Card: CardSummary{Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}}
	}

	t.Run("a second payment for an order", func(t *testing.T) {
		order := uuid.New()
		if _, err := insertPayment(ctx, pool, payment(order, 1200), time.Minute); err != nil {
			t.Fatal(err)
		}
		_, err := insertPayment(ctx, pool, payment(order, 1200), time.Minute)
		pgtest.SafeProblem(t, err, http.StatusConflict,
			"order "+order.String()+" already has a payment; read it with GET /internal/payments?order_id="+order.String(),
			"payments_order_id_key")
	})
	t.Run("an amount the schema refuses", func(t *testing.T) {
		_, err := insertPayment(ctx, pool, payment(uuid.New(), 0), time.Minute)
		pgtest.SafeProblem(t, err, http.StatusConflict, "the change breaks a rule of the payment data; nothing was saved",
			"payments_amount_check", "payments")
	})
	t.Run("a refund of no payment", func(t *testing.T) {
		id := uuid.New()
		_, err := exec(ctx, pool, "insert refund", insertRefundSQL, id, uuid.New(), 100, processorKey("refund", id), time.Minute.Microseconds())
		pgtest.SafeProblem(t, err, http.StatusConflict, "the payment to refund does not exist",
			"refunds_payment_id_fkey", "refunds")
	})
}
