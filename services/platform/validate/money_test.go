package validate_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/validate"
	"github.com/mylittleshopping/shop/services/platform/validate/validatetest"
)

func TestMoneyChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, got, want string
	}{
		{"price ok", validate.Price(1299), ""},
		{"price at the bound", validate.Price(validate.MaxPrice), ""},
		{"price zero", validate.Price(0), "must be a positive number of minor units (1299 for 12.99)"},
		{"price above the bound", validate.Price(validate.MaxPrice + 1), fmt.Sprintf("must be at most %d", int64(validate.MaxPrice))},
		{"amount at the bound", validate.Amount(validate.MaxAmount), ""},
		{"amount zero", validate.Amount(0), fmt.Sprintf("must be between 1 and %d (minor units)", int64(validate.MaxAmount))},
		{"amount above the bound", validate.Amount(validate.MaxAmount + 1), fmt.Sprintf("must be between 1 and %d (minor units)", int64(validate.MaxAmount))},
		{"total zero", validate.Total(0), ""},
		{"total negative", validate.Total(-1), fmt.Sprintf("must be between 0 and %d", int64(validate.MaxAmount))},
		{"currency ok", validate.Currency("JPY"), ""},
		{"currency newest", validate.Currency("XCG"), ""},
		{"currency empty", validate.Currency(""), "is required"},
		{"currency retired", validate.Currency("DEM"), `"DEM" is not an ISO 4217 currency in circulation`},
		{"currency for tests", validate.Currency("XTS"), `"XTS" is not an ISO 4217 currency in circulation`},
		{"currency gold", validate.Currency("XAU"), `"XAU" is not an ISO 4217 currency in circulation`},
		{"currency NUL", validate.Currency("EU\x00"), "must be an ISO 4217 code of three upper-case letters, like EUR"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestMaxAmountHoldsTheLargestCart: MaxAmount is the sum of the largest
// cart, and JSON clients that read numbers as float64 read it exactly.
func TestMaxAmountHoldsTheLargestCart(t *testing.T) {
	t.Parallel()
	if got, want := int64(validate.MaxAmount), int64(validate.MaxPrice)*validate.MaxQuantity*validate.MaxLines; got != want {
		t.Errorf("got MaxAmount %d, want MaxPrice × MaxQuantity × MaxLines = %d", got, want)
	}
	if validate.MaxAmount > 1<<53 {
		t.Errorf("got MaxAmount %d, want at most 2^53 (exact in a float64)", int64(validate.MaxAmount))
	}
	if validate.MaxAmount > math.MaxInt64/1000 {
		t.Errorf("got MaxAmount %d, want room for sums of amounts in an int64", int64(validate.MaxAmount))
	}
}

// TestCartTotalsAreChargeable: every cart of lines the shared rules accept
// sums to an amount they accept, so that payment never refuses a total
// that inventory's prices and a cart's limits allowed.
func TestCartTotalsAreChargeable(t *testing.T) {
	t.Parallel()
	validatetest.Property(t, "carts", func(g *validatetest.Gen) string {
		c := g.Cart()
		if !c.Valid() {
			return ""
		}
		total, ok := c.Total()
		if !ok || validate.Amount(total) != "" {
			return c.String()
		}
		return ""
	})
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "IDR": 2, "IRR": 2, "CLP": 0} {
		if got, ok := validate.MinorUnits(code); !ok || got != want {
			t.Errorf("MinorUnits(%s): got %d, %v, want %d, true", code, got, ok, want)
		}
	}
	if _, ok := validate.MinorUnits("XXX"); ok {
		t.Error("MinorUnits(XXX): got ok, want not a currency")
	}
	codes := validate.Currencies()
	if len(codes) != 157 {
		t.Errorf("got %d currencies, want ISO 4217's 157 in circulation", len(codes))
	}
	for _, c := range codes {
		if validate.Currency(c) != "" {
			t.Errorf("Currency(%s) refuses a code Currencies lists", c)
		}
	}
}
