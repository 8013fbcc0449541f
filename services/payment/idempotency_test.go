package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// TestReplay is acceptance 1 (replay): the same key with the same request
// gets the stored answer, status and body, marked replayed, and the card
// is charged once — for a success and for a decline alike.
func TestReplay(t *testing.T) {
	t.Parallel()
	s := startService(t)
	tests := []struct {
		name   string
		card   string
		status int
	}{
		{"succeeded", "4242424242424242", http.StatusCreated},
		{"declined", "4000000000000002", http.StatusPaymentRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			order := newOrderID()
			key := "replay-" + tt.name
			first := s.pay(t, key, payReq(order, 2500, tt.card), tt.status)
			if first.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("first answer marked replayed")
			}
			for i := range 3 {
				again := s.pay(t, key, payReq(order, 2500, tt.card), tt.status)
				if string(again.Body) != string(first.Body) {
					t.Errorf("replay %d: got body %s, want the first one %s", i, again.Body, first.Body)
				}
				if again.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("replay %d: got Idempotent-Replayed %q, want true", i, again.Header.Get("Idempotent-Replayed"))
				}
				if again.Header.Get("Location") != first.Header.Get("Location") || first.Header.Get("Location") == "" {
					t.Errorf("replay %d: got Location %q, want %q", i, again.Header.Get("Location"), first.Header.Get("Location"))
				}
			}
			if got := s.counts(t).ChargesByReference[order]; got != 1 {
				t.Errorf("got %d charges for the order, want 1", got)
			}
		})
	}
}

// TestKeyReusedWithAnotherRequest is acceptance 1 (body mismatch): a key
// sent again with a request that differs in anything — even only the CVC —
// is 422, and nothing more is charged.
func TestKeyReusedWithAnotherRequest(t *testing.T) {
	t.Parallel()
	s := startService(t)
	order := newOrderID()
	var p payment
	s.pay(t, "reused", payReq(order, 1000, "4242424242424242"), http.StatusCreated).Decode(t, &p)
	paymentID := p.ID

	changed := func(f func(map[string]any)) map[string]any {
		b := payReq(order, 1000, "4242424242424242")
		f(b)
		return b
	}
	tests := []struct {
		name string
		path string
		body any
	}{
		{"amount", "/internal/payments", changed(func(b map[string]any) { b["amount"] = 1001 })},
		{"currency", "/internal/payments", changed(func(b map[string]any) { b["currency"] = "USD" })},
		{"order", "/internal/payments", changed(func(b map[string]any) { b["order_id"] = newOrderID() })},
		{"card number", "/internal/payments", changed(func(b map[string]any) { b["card"].(map[string]any)["number"] = "5555555555554444" })},
		{"cvc only", "/internal/payments", changed(func(b map[string]any) { b["card"].(map[string]any)["cvc"] = otherCVC })},
		{"holder only", "/internal/payments", changed(func(b map[string]any) { b["card"].(map[string]any)["holder"] = "Ada King" })},
		{"used for a refund", "/internal/payments/" + paymentID + "/refunds", map[string]any{"amount": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s.do(t, "POST", tt.path, "reused", tt.body).WantProblem(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
		})
	}
	t.Cleanup(func() {
		c := s.counts(t)
		if c.Charges != 1 || c.Refunds != 0 {
			t.Errorf("got %d charges and %d refunds, want 1 and 0", c.Charges, c.Refunds)
		}
	})
}

// TestDuplicateInFlight is acceptance 1 (concurrent duplicate): while the
// first request with a key waits for the processor (the slow card), the
// same request again is 409 with Retry-After, and makes no charge.
func TestDuplicateInFlight(t *testing.T) {
	t.Parallel()
	s := startService(t)
	order := newOrderID()
	body := payReq(order, 4200, "4000000000000077")
	first := make(chan response, 1)
	go func() { first <- s.do(t, "POST", "/internal/payments", "in-flight", body) }()
	eventually(t, "the sandbox got the first charge", func() bool { return s.counts(t).Charges == 1 })

	dup := s.do(t, "POST", "/internal/payments", "in-flight", body)
	dup.WantProblem(t, http.StatusConflict, "idempotency-key-in-use")
	if dup.Header.Get("Retry-After") == "" {
		t.Error("got no Retry-After on the 409")
	}
	// The first one gives up waiting after PAYMENT_PROCESSOR_TIMEOUT: the
	// outcome is unknown, the payment pending.
	r := <-first
	r.Want(t, http.StatusAccepted)
	var p payment
	r.Decode(t, &p)
	if p.Status != "pending" {
		t.Errorf("got status %q, want pending", p.Status)
	}
	if got := s.counts(t).ChargesByReference[order]; got != 1 {
		t.Errorf("got %d charges, want 1", got)
	}
}

// TestKeysKeptAtLeast24Hours is acceptance 1 (retention): the clean-up
// loop deletes a key 25 hours old and keeps one 23 hours old, which still
// replays; the order behind the deleted key is still protected by the one
// payment per order rule.
func TestKeysKeptAtLeast24Hours(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("PAYMENT_IDEMPOTENCY_RETENTION", "24h"))
	orders := map[string]string{"key-23h": newOrderID(), "key-25h": newOrderID()}
	first := map[string]response{}
	for key, order := range orders {
		first[key] = s.pay(t, key, payReq(order, 500, "4242424242424242"), http.StatusCreated)
	}
	ctx := context.Background()
	for key, age := range map[string]string{"key-23h": "23 hours", "key-25h": "25 hours"} {
		if _, err := s.DB.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - $2::interval WHERE key = $1`, key, age); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE key = $1`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	eventually(t, "the 25h-old key is deleted", func() bool { return !exists("key-25h") })
	time.Sleep(300 * time.Millisecond) // a few more clean-up rounds
	if !exists("key-23h") {
		t.Fatal("the 23h-old key was deleted, want it kept: keys live at least 24h")
	}
	again := s.pay(t, "key-23h", payReq(orders["key-23h"], 500, "4242424242424242"), http.StatusCreated)
	if string(again.Body) != string(first["key-23h"].Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the 23h-old key did not replay: got %s", again.Body)
	}
	s.do(t, "POST", "/internal/payments", "key-25h", payReq(orders["key-25h"], 500, "4242424242424242")).
		WantProblem(t, http.StatusConflict, "payment-exists")
	if c := s.counts(t); c.Charges != 2 {
		t.Errorf("got %d charges, want 2", c.Charges)
	}
}

// TestConfigRefusesShortRetention: keys cannot be configured to live less
// than 24 hours, nor a lease shorter than the processor's timeout.
func TestConfigRefusesShortRetention(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL":              "postgres://127.0.0.1:1/none",
		"PAYMENT_PROCESSOR_URL":     "http://127.0.0.1:1",
		"PAYMENT_PROCESSOR_API_KEY": "k",
		"PAYMENT_FINGERPRINT_KEY":   strings.Repeat("k", 32),
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"retention under 24h", "PAYMENT_IDEMPOTENCY_RETENTION", "23h59m", "PAYMENT_IDEMPOTENCY_RETENTION must be at least 24h"},
		{"lease under processor timeout", "PAYMENT_IDEMPOTENCY_LEASE", "5s", "PAYMENT_IDEMPOTENCY_LEASE must be longer than PAYMENT_PROCESSOR_TIMEOUT"},
		{"short fingerprint key", "PAYMENT_FINGERPRINT_KEY", "short", "PAYMENT_FINGERPRINT_KEY must be at least 32 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tt.key] = tt.value
			err := run(context.Background(), logging.New("payment", io.Discard, "error"), config.MapLookup(env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
