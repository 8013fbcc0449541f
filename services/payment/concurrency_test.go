package main

import (
	"net/http"
	"sync"
	"testing"
)

// TestFiftyConcurrentIdenticalRequests is acceptance 2: 50 identical
// requests with one key, sent at once, make exactly one charge at the
// processor. Each is answered either the payment (201, the first answer or
// its replay) or 409 (the key was in flight); all 201s name one payment.
func TestFiftyConcurrentIdenticalRequests(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("DATABASE_MAX_CONNS", "20"))
	order := newOrderID()
	body := payReq(order, 9900, "4242424242424242")
	const n = 50
	answers := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = s.do(t, "POST", "/internal/payments", "fifty", body)
		})
	}
	close(start)
	wg.Wait()

	created, inFlight := 0, 0
	ids := map[string]bool{}
	for _, r := range answers {
		switch r.Status {
		case http.StatusCreated:
			created++
			var p payment
			r.Decode(t, &p)
			ids[p.ID] = true
		case http.StatusConflict:
			inFlight++
			if p := r.Problem(t); p.Type != "https://mylittleshopping.dev/problems/idempotency-key-in-use" {
				t.Errorf("got 409 %q, want idempotency-key-in-use", p.Type)
			}
		default:
			t.Errorf("got status %d (%s), want 201 or 409", r.Status, r.Body)
		}
	}
	if created == 0 || len(ids) != 1 {
		t.Errorf("got %d answers 201 naming %d payments, want at least one, naming one payment", created, len(ids))
	}
	c := s.counts(t)
	if c.Charges != 1 || c.ChargesByReference[order] != 1 {
		t.Fatalf("the sandbox made %d charges (%d for the order; by key %v), want exactly 1", c.Charges, c.ChargesByReference[order], c.ChargesByIdempotencyKey)
	}
	t.Logf("50 concurrent requests: %d answered 201, %d answered 409, 1 charge", created, inFlight)
}
