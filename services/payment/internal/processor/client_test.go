package processor_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/payment/internal/payments"
	"github.com/mylittleshopping/shop/services/payment/internal/processor"
	"github.com/mylittleshopping/shop/services/payment/sandbox"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// TestClientSortsOutcomes drives the production client against the real
// sandbox: every answer is done, refused (nothing made) or unknown (maybe
// made), which is what the payments domain decides on.
func TestClientSortsOutcomes(t *testing.T) {
	t.Parallel()
	log := logging.ForTest(t)
	sb, err := sandbox.New(sandbox.Config{APIKey: "sk_test", SlowDelay: 2 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.Middleware(log, sb))
	t.Cleanup(srv.Close)
	client := func(key string) *processor.Client {
		c, err := processor.New(processor.Config{URL: srv.URL, APIKey: key, Timeout: 300 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	card := func(number, cvc string) payments.Card {
		return payments.Card{Number: number, ExpMonth: 12, ExpYear: time.Now().Year() + 1, CVC: cvc}
	}
	tests := []struct {
		name     string
		apiKey   string
		card     payments.Card
		status   payments.ChargeStatus
		rejected bool
		unknown  bool
	}{
		{"succeeded", "sk_test", card(sandbox.CardSuccess, "123"), payments.ChargeSucceeded, false, false},
		{"declined", "sk_test", card(sandbox.CardDeclined, "123"), payments.ChargeFailed, false, false},
		{"invalid card is refused", "sk_test", card(sandbox.CardSuccess, "1"), "", true, false},
		{"slow card times out", "sk_test", card(sandbox.CardSlow, "123"), "", false, true},
		{"wrong API key is unknown", "sk_wrong", card(sandbox.CardSuccess, "123"), "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch, err := client(tt.apiKey).Charge(context.Background(), "key-"+tt.name, payments.ChargeRequest{Amount: 100, Currency: "EUR", Card: tt.card})
			var rej *payments.RejectedError
			switch {
			case tt.rejected != errors.As(err, &rej):
				t.Errorf("got %v, want rejected=%v", err, tt.rejected)
			case tt.unknown != errors.Is(err, payments.ErrOutcomeUnknown):
				t.Errorf("got %v, want unknown=%v", err, tt.unknown)
			case err == nil && ch.Status != tt.status:
				t.Errorf("got status %s, want %s", ch.Status, tt.status)
			}
		})
	}
	if _, err := client("sk_test").FindCharge(context.Background(), "never-used"); !errors.Is(err, payments.ErrNotFound) {
		t.Errorf("FindCharge of an unused key: got %v, want ErrNotFound", err)
	}
}
