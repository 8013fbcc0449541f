package orders

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/orders/migrations"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
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
	s := NewService(pool, Config{OrderURL: "http://shop.test/v1/orders", MaxAddresses: 20}, logging.ForTest(t))
	product, seller := uuid.New(), uuid.New()
	line := Line{ProductID: product, SellerID: seller, SellerEmail: "seller@example.com", Name: "Mug", UnitPrice: 1200, Quantity: 1}
	order := func(key string, lines ...Line) NewOrder {
		return NewOrder{IdempotencyKey: key, BuyerID: uuid.New(), BuyerEmail: "buyer@example.com", Currency: "EUR", Lines: lines,
			Address: Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "FR"}}
	}

	t.Run("one product on two lines", func(t *testing.T) {
		_, _, err := s.Create(ctx, order("k1", line, line))
		pgtest.SafeProblem(t, err, http.StatusConflict, "an order holds one line per product; send the product's units on one line",
			"order_lines_product_key", "order_lines")
	})
	t.Run("a second delivery for one seller", func(t *testing.T) {
		o, _, err := s.Create(ctx, order("k2", line))
		if err != nil {
			t.Fatal(err)
		}
		err = pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
			if err := insertDelivery(ctx, tx, uuid.New(), o.ID, seller); err != nil {
				return err
			}
			return insertDelivery(ctx, tx, uuid.New(), o.ID, seller)
		})
		pgtest.SafeProblem(t, err, http.StatusConflict, "the order has a delivery for this seller already",
			"deliveries_order_seller_key", "deliveries")
	})
	t.Run("an address the schema refuses", func(t *testing.T) {
		_, err := insertAddress(ctx, pool, uuid.New(), uuid.New(), Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "france"})
		pgtest.SafeProblem(t, err, http.StatusConflict, "the change breaks a rule of the order data; nothing was saved", "addresses_country_check", "addresses")
	})
}
