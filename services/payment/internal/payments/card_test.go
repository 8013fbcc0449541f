package payments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/validate"
)

func TestCardChecks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		number, brand string
		ok            bool
	}{
		{"4242424242424242", "visa", true},
		{"5555555555554444", "mastercard", true},
		{"2223003122003222", "mastercard", true},
		{"378282246310005", "amex", true},
		{"6011111111111117", "discover", true},
		{"4242424242424241", "visa", false},
		{"42424242", "visa", false},
		{"4242-4242-4242-4242", "visa", false},
	}
	for _, tt := range tests {
		if got := validate.CardNumber(tt.number) == ""; got != tt.ok {
			t.Errorf("validate.CardNumber(%s): got ok=%v, want %v", tt.number, got, tt.ok)
		}
		if got := Brand(tt.number); got != tt.brand {
			t.Errorf("Brand(%s): got %s, want %s", tt.number, got, tt.brand)
		}
	}
	expiries := []struct {
		month, year int
		field       string
	}{
		{6, 2026, ""}, {5, 2026, "exp_month"}, {12, 2025, "exp_year"}, {13, 2030, "exp_month"}, {1, 2090, "exp_year"},
	}
	for _, tt := range expiries {
		if field, _ := validate.CardExpiry(tt.month, tt.year, now); field != tt.field {
			t.Errorf("validate.CardExpiry(%d/%d): got field %q, want %q", tt.month, tt.year, field, tt.field)
		}
	}
}

// TestCardNeverFormatsItsSecrets: a Card put in a log line, an error or
// JSON by mistake shows its brand and last 4 digits only.
func TestCardNeverFormatsItsSecrets(t *testing.T) {
	t.Parallel()
	c := Card{Number: "4242424242424242", ExpMonth: 4, ExpYear: 2031, CVC: "7319", Holder: "Ada"}
	js, _ := json.Marshal(map[string]any{"card": c})
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Errorf("charge %v", c).Error(), string(js)} {
		if strings.Contains(s, c.Number) || strings.Contains(s, c.CVC) || !strings.Contains(s, "visa ending 4242") {
			t.Errorf("got %q, want the brand and last 4 only", s)
		}
	}
}

// TestFingerprint: same request, same fingerprint; any change (even the
// CVC alone) another; and the fingerprint depends on the secret key, so it
// cannot be brute-forced into a card number without it.
func TestFingerprint(t *testing.T) {
	t.Parallel()
	s := &Service{fpKey: []byte("key-one")}
	in := NewPayment{OrderID: uuid.New(), Amount: 100, Currency: "EUR", Card: Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "123"}}
	other := in
	other.Card.CVC = "124"
	if !bytes.Equal(s.paymentFingerprint(in), s.paymentFingerprint(in)) {
		t.Error("the same request has two fingerprints")
	}
	if bytes.Equal(s.paymentFingerprint(in), s.paymentFingerprint(other)) {
		t.Error("requests differing in the CVC share a fingerprint")
	}
	if bytes.Equal(s.paymentFingerprint(in), (&Service{fpKey: []byte("key-two")}).paymentFingerprint(in)) {
		t.Error("the fingerprint does not depend on the key")
	}
}
