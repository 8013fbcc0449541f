package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/validate"
	"github.com/mylittleshopping/shop/services/platform/validate/validatetest"
)

// TestSharedRules: payment accepts every card, amount, currency and key
// that platform/validate accepts, and so every one the edge accepts (the
// edge accepts nothing more: its own TestSharedRules), and the total of
// every cart whose prices and quantities the shared rules accept.
func TestSharedRules(t *testing.T) {
	t.Parallel()
	now := time.Now()
	request := func() CreatePaymentRequest {
		return CreatePaymentRequest{
			OrderId:  uuid.New(),
			Amount:   4999,
			Currency: "EUR",
			Card:     CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: now.Year() + 3, Cvc: "123"},
		}
	}
	charge := func(req CreatePaymentRequest, what string) string {
		if _, err := newPayment("order-"+req.OrderId.String(), req, now); err != nil {
			return fmt.Sprintf("platform/validate accepts %s, payment refuses it: %s", what, validatetest.Faults(err))
		}
		return ""
	}
	validatetest.Property(t, "cards", func(g *validatetest.Gen) string {
		c := g.Card(now)
		var shared validate.Errors
		if validate.CheckCard(&shared, "card.", c, now); shared.Err() != nil {
			return ""
		}
		req := request()
		req.Card = CardInput{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Cvc: c.CVC}
		if c.Holder != "" {
			req.Card.Holder = &c.Holder
		}
		return charge(req, fmt.Sprintf("card %+v", c))
	})
	validatetest.Property(t, "amounts", func(g *validatetest.Gen) string {
		a, cur := g.Amount(), g.Currency()
		if validate.Amount(a) != "" || validate.Currency(cur) != "" {
			return ""
		}
		req := request()
		req.Amount, req.Currency = a, cur
		if d := charge(req, fmt.Sprintf("amount %d %s", a, cur)); d != "" {
			return d
		}
		if err := checkRefund("refund-1", CreateRefundRequest{Amount: a}); err != nil {
			return fmt.Sprintf("platform/validate accepts amount %d, payment refuses its refund: %s", a, validatetest.Faults(err))
		}
		return ""
	})
	validatetest.Property(t, "cart totals", func(g *validatetest.Gen) string {
		c := g.Cart()
		if !c.Valid() {
			return ""
		}
		req := request()
		req.Amount, _ = c.Total()
		req.Currency = c.Currency
		return charge(req, "the total of a cart of "+c.String())
	})
	validatetest.Property(t, "keys", func(g *validatetest.Gen) string {
		k := g.Key()
		if validate.IdempotencyKey(k) != "" {
			return ""
		}
		if _, err := newPayment(k, request(), now); err != nil {
			return fmt.Sprintf("platform/validate accepts key %q, payment refuses it: %s", k, validatetest.Faults(err))
		}
		return ""
	})
}
