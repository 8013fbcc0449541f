package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/validate"
	"github.com/mylittleshopping/shop/services/platform/validate/validatetest"
)

// TestSharedRules: the edge's checkout accepts no card, key or expected
// total that platform/validate refuses. The services check those values
// with platform/validate again and accept all it accepts (their own
// TestSharedRules), so a checkout the edge lets through is never refused
// behind it for the form of its card or its money.
func TestSharedRules(t *testing.T) {
	t.Parallel()
	now := time.Now()
	holder := func(c validate.Card) *string {
		if c.Holder == "" {
			return nil
		}
		return &c.Holder
	}
	request := func() CheckoutRequest {
		return CheckoutRequest{
			ShippingAddress: &Address{Name: "Ada Lovelace", Line1: "12 rue de la Paix", City: "Paris", PostalCode: "75002", Country: "FR"},
			Card:            CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: now.Year() + 3, Cvc: "123"},
		}
	}
	validatetest.Property(t, "cards", func(g *validatetest.Gen) string {
		c := g.Card(now)
		req := request()
		req.Card = CardInput{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Cvc: c.CVC, Holder: holder(c)}
		if checkRequest("k", req, now) != nil {
			return ""
		}
		var shared validate.Errors
		validate.CheckCard(&shared, "card.", c, now)
		if err := shared.Err(); err != nil {
			return fmt.Sprintf("the edge accepts card %+v, platform/validate refuses it: %s", c, validatetest.Faults(err))
		}
		return ""
	})
	validatetest.Property(t, "expected totals", func(g *validatetest.Gen) string {
		m := Money{Amount: g.Amount(), Currency: g.Currency()}
		req := request()
		req.ExpectedTotal = &m
		if checkRequest("k", req, now) != nil {
			return ""
		}
		if d := validate.Total(m.Amount) + validate.Currency(m.Currency); d != "" {
			return fmt.Sprintf("the edge accepts expected total %d %q, platform/validate refuses it: %s", m.Amount, m.Currency, d)
		}
		return ""
	})
	validatetest.Property(t, "keys", func(g *validatetest.Gen) string {
		k := g.Key()
		if checkRequest(k, request(), now) != nil {
			return ""
		}
		if d := validate.IdempotencyKey(k); d != "" {
			return fmt.Sprintf("the edge accepts key %q, platform/validate refuses it: %s", k, d)
		}
		return ""
	})
}
