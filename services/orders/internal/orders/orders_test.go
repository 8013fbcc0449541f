package orders

import (
	"math"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount int64
		code   string
		want   string
	}{
		{2599, "EUR", "25.99 EUR"},
		{5, "EUR", "0.05 EUR"},
		{0, "USD", "0.00 USD"},
		{2599, "JPY", "2599 JPY"},
		{1234, "BHD", "1.234 BHD"},
		{math.MaxInt64, "EUR", "92233720368547758.07 EUR"},
		{math.MinInt64, "EUR", "-92233720368547758.08 EUR"},
	}
	for _, tt := range tests {
		if got := formatMoney(tt.amount, tt.code); got != tt.want {
			t.Errorf("formatMoney(%d, %s): got %q, want %q", tt.amount, tt.code, got, tt.want)
		}
	}
}

func TestTotalsOverflow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []Line
		total int64
		field string // "" when the total is valid
	}{
		{"empty", nil, 0, ""},
		{"max", []Line{{UnitPrice: math.MaxInt64, Quantity: 1}}, math.MaxInt64, ""},
		{"product wraps to a small positive", []Line{{UnitPrice: 1 << 62, Quantity: 4}}, 0, "lines[0].unit_price"},
		{"sum wraps", []Line{{UnitPrice: math.MaxInt64, Quantity: 1}, {UnitPrice: 1, Quantity: 1}}, 0, "lines"},
		{"quantity 0", []Line{{UnitPrice: 1, Quantity: 0}}, 0, "lines[0]"},
	}
	for _, tt := range tests {
		total, err := Totals(tt.lines)
		if tt.field == "" {
			if err != nil || total != tt.total {
				t.Errorf("%s: got %d, %v; want %d", tt.name, total, err, tt.total)
			}
			continue
		}
		e, ok := apierr.As(err)
		if !ok || e.Kind != apierr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
			t.Errorf("%s: got %d, %v; want an invalid %s", tt.name, total, err, tt.field)
		}
	}
}

// TestMachineShape: the statuses the machine leaves final are exactly the
// ones the README calls final, and every non-final status can be reached
// from pending.
func TestMachineShape(t *testing.T) {
	t.Parallel()
	for _, s := range Statuses {
		want := s == Failed || s == Cancelled || s == Refunded
		if s.Final() != want {
			t.Errorf("%s.Final(): got %v, want %v", s, s.Final(), want)
		}
	}
	reached := map[Status]bool{Pending: true}
	for changed := true; changed; {
		changed = false
		for from := range reached {
			for _, to := range transitions[from] {
				if !reached[to] {
					reached[to], changed = true, true
				}
			}
		}
	}
	for _, s := range Statuses {
		if !reached[s] {
			t.Errorf("%s cannot be reached from pending", s)
		}
	}
}
