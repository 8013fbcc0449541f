package inventory

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestConstraintViolationsHideTheDatabase breaks the schema's constraints
// behind the HTTP boundary's back (which refuses these inputs first): the
// client reads the store's own words, never PostgreSQL's.
func TestConstraintViolationsHideTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, migrations.Set, outbox.Migrations)
	s := NewService(pool, Config{ReservationTTL: time.Minute, SweepInterval: time.Second, SweepBatch: 10}, logging.ForTest(t))
	p, err := s.CreateProduct(ctx, uuid.New(), NewProduct{Name: "Mug", Price: Money{Amount: 1200, Currency: "EUR"}, OnHand: 5000})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a product the schema refuses", func(t *testing.T) {
		_, err := s.CreateProduct(ctx, uuid.New(), NewProduct{Name: "Free mug", Price: Money{Amount: 0, Currency: "EUR"}})
		pgtest.SafeProblem(t, err, http.StatusConflict, "the change breaks a rule of the inventory data; nothing was saved",
			"products_price_amount_check", "products")
	})
	t.Run("a cart line above the schema's quantity", func(t *testing.T) {
		_, err := s.SetCartLine(ctx, uuid.New(), p.ID, 150)
		pgtest.SafeProblem(t, err, http.StatusConflict, "a cart line holds 1 to 99 units of a product",
			"cart_lines_quantity_check", "cart_lines")
	})
	t.Run("a reservation line above the schema's quantity", func(t *testing.T) {
		_, _, err := s.Reserve(ctx, ReserveRequest{OrderID: uuid.New(), Lines: []Line{{ProductID: p.ID, Quantity: 2000}}})
		pgtest.SafeProblem(t, err, http.StatusConflict, "a reservation line holds 1 to 1000 units of a product",
			"reservation_lines_quantity_check", "reservation_lines")
	})
}
