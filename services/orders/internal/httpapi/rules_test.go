package httpapi

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/orders"
	"github.com/mylittleshopping/shop/services/platform/validate"
	"github.com/mylittleshopping/shop/services/platform/validate/validatetest"
)

// TestSharedRules: orders accepts, as an order, every cart whose prices,
// quantities, line count and currency platform/validate accepts (the most
// inventory lets a cart hold: inventory's TestSharedRules), every expected
// total and every checkout key it accepts (the most the edge lets through:
// the aggregator's TestSharedRules).
func TestSharedRules(t *testing.T) {
	t.Parallel()
	seller := uuid.NewString()
	request := func(c validatetest.Cart) CreateOrderRequest {
		req := CreateOrderRequest{
			BuyerId:         uuid.NewString(),
			BuyerEmail:      "ada@example.com",
			ShippingAddress: Address{Name: "Ada Lovelace", Line1: "12 rue de la Paix", City: "Paris", PostalCode: "75002", Country: "FR"},
		}
		for _, l := range c.Lines {
			req.Lines = append(req.Lines, OrderLineInput{
				ProductId: uuid.NewString(), SellerId: seller, SellerEmail: "seller@example.com", Name: "Blue mug",
				UnitPrice: l.Price, Quantity: l.Quantity, Currency: c.Currency,
			})
		}
		return req
	}
	create := func(key string, req CreateOrderRequest) error {
		in, err := toNewOrder(key, req)
		if err != nil {
			return err
		}
		_, err = orders.Totals(in.Lines)
		return err
	}
	oneMug := validatetest.Cart{Currency: "EUR", Lines: []validatetest.Line{{Price: 1299, Quantity: 1}}}
	validatetest.Property(t, "carts", func(g *validatetest.Gen) string {
		c := g.Cart()
		if !c.Valid() {
			return ""
		}
		if err := create("k", request(c)); err != nil {
			return fmt.Sprintf("platform/validate accepts a cart of %s, orders refuses it: %s", c, validatetest.Faults(err))
		}
		return ""
	})
	validatetest.Property(t, "expected totals", func(g *validatetest.Gen) string {
		m := Money{Amount: g.Amount(), Currency: g.Currency()}
		if validate.Total(m.Amount) != "" || validate.Currency(m.Currency) != "" {
			return ""
		}
		req := request(oneMug)
		req.ExpectedTotal = &m
		if err := create("k", req); err != nil {
			return fmt.Sprintf("platform/validate accepts expected total %d %s, orders refuses it: %s", m.Amount, m.Currency, validatetest.Faults(err))
		}
		return ""
	})
	validatetest.Property(t, "keys", func(g *validatetest.Gen) string {
		k := g.Key()
		if validate.IdempotencyKey(k) != "" {
			return ""
		}
		if err := create(k, request(oneMug)); err != nil {
			return fmt.Sprintf("platform/validate accepts key %q, orders refuses it: %s", k, validatetest.Faults(err))
		}
		return ""
	})
}
