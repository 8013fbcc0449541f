package validate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

func TestCardChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, got, want string
	}{
		{"number ok", validate.CardNumber("4242424242424242"), ""},
		{"number amex", validate.CardNumber("378282246310005"), ""},
		{"number check digit", validate.CardNumber("4242424242424241"), "is not a valid card number (Luhn check failed)"},
		{"number short", validate.CardNumber("42424242"), "must be 12 to 19 digits"},
		{"number spaces", validate.CardNumber("4242 4242 4242 4242"), "must be digits only, without spaces"},
		{"number empty", validate.CardNumber(""), "is required"},
		{"cvc ok", validate.CVC("1234"), ""},
		{"cvc short", validate.CVC("12"), "must be 3 or 4 digits"},
		{"cvc empty", validate.CVC(""), "is required"},
		{"holder ok", validate.CardHolder("Ada Lovelace"), ""},
		{"holder none", validate.CardHolder(""), ""},
		{"holder long", validate.CardHolder(strings.Repeat("é", 101)), "must be at most 100 characters"},
		{"holder newline", validate.CardHolder("Ada\nLovelace"), "must be a single line"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestCardExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		month, year int
		field       string
	}{
		{6, 2026, ""}, {12, 2046, ""}, {5, 2026, "exp_month"}, {12, 2025, "exp_year"}, {13, 2030, "exp_month"},
		{0, 2030, "exp_month"}, {1, 2047, "exp_year"}, {1, 2090, "exp_year"}, {1, 2200, "exp_year"}, {1, 26, "exp_year"},
	}
	for _, tt := range tests {
		if field, _ := validate.CardExpiry(tt.month, tt.year, now); field != tt.field {
			t.Errorf("CardExpiry(%d/%d): got field %q, want %q", tt.month, tt.year, field, tt.field)
		}
	}
	// The last moment of the expiry month, in UTC, is still valid.
	end := time.Date(2026, 7, 1, 0, 0, 0, -1, time.UTC).In(time.FixedZone("UTC+2", 7200))
	if field, detail := validate.CardExpiry(6, 2026, end); field != "" {
		t.Errorf("CardExpiry(6/2026) at %v: got %s %q, want valid", end, field, detail)
	}
}

func TestCheckCardNamesEachField(t *testing.T) {
	t.Parallel()
	var errs validate.Errors
	validate.CheckCard(&errs, "card.", validate.Card{Number: "55", ExpMonth: 13, ExpYear: 2030, CVC: "", Holder: "a\x00"}, time.Now())
	e, ok := apierr.As(errs.Err())
	if !ok {
		t.Fatalf("got %v, want an invalid error", errs.Err())
	}
	var got []string
	for _, f := range e.Fields {
		got = append(got, f.Field)
		if strings.Contains(f.Detail, "55") {
			t.Errorf("detail %q repeats the number", f.Detail)
		}
	}
	if want := "card.number card.exp_month card.cvc card.holder"; strings.Join(got, " ") != want {
		t.Errorf("got fields %v, want %s", got, want)
	}
	var ok2 validate.Errors
	validate.CheckCard(&ok2, "card.", validate.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 3, CVC: "123"}, time.Now())
	if err := ok2.Err(); err != nil {
		t.Errorf("got %v for a valid card, want nil", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, got, want string
	}{
		{"ok", validate.IdempotencyKey("checkout-1"), ""},
		{"at the bound", validate.IdempotencyKey(strings.Repeat("k", 200)), ""},
		{"empty", validate.IdempotencyKey(""), "is required"},
		{"long", validate.IdempotencyKey(strings.Repeat("k", 201)), "must be at most 200 characters"},
		{"not ASCII", validate.IdempotencyKey("clé"), "must be printable ASCII"},
		{"control", validate.IdempotencyKey("a\nb"), "must be printable ASCII"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
