package httpapi

import (
	"fmt"
	"testing"

	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/platform/validate"
	"github.com/mylittleshopping/shop/services/platform/validate/validatetest"
)

// TestSharedRules: inventory, where prices enter the shop (the edge passes
// a seller's product through), accepts exactly the prices and currencies
// platform/validate accepts, and its carts hold no more than the shared
// bounds. So every cart sums to an amount that orders and payment accept
// (validate's TestCartTotalsAreChargeable, their own TestSharedRules).
func TestSharedRules(t *testing.T) {
	t.Parallel()
	validatetest.Property(t, "prices", func(g *validatetest.Gen) string {
		m := inventory.Money{Amount: g.Amount(), Currency: g.Currency()}
		var f fields
		f.checkPrice("price", m)
		ours := f.err() == nil
		shared := validate.Price(m.Amount) == "" && validate.Currency(m.Currency) == ""
		if ours != shared {
			return fmt.Sprintf("price %d %q: inventory accepts it: %v, platform/validate: %v", m.Amount, m.Currency, ours, shared)
		}
		return ""
	})
	validatetest.Property(t, "cart quantities", func(g *validatetest.Gen) string {
		q := g.Quantity()
		if inventory.CheckCartQuantity(q) == "" && q > validate.MaxQuantity {
			return fmt.Sprintf("inventory accepts %d of a product in a cart line, more than validate.MaxQuantity", q)
		}
		return ""
	})
	if inventory.MaxCartLines > validate.MaxLines {
		t.Errorf("a cart holds up to %d lines, more than validate.MaxLines %d", inventory.MaxCartLines, validate.MaxLines)
	}
}
