package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// TestMetrics: the pending payments and the age of the oldest are read
// from the database at each scrape of the health listener's /metrics: a
// payment whose answer is late (the slow card) is pending until the
// reconciler settles it, a settled one is not; requests count by route
// template. The API's port serves no /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	health := servicetest.Addr(t)
	s := startService(t,
		withEnv("HTTP_HEALTH_ADDR", health),
		withEnv("PAYMENT_PROCESSOR_TIMEOUT", "300ms"),
		withEnv("PAYMENT_IDEMPOTENCY_LEASE", "2s"),
		withEnv("SANDBOX_SLOW_DELAY", "3s"))
	gauges := func() (pending, oldest float64) {
		t.Helper()
		f := metricstest.Scrape(t, "http://"+health+"/metrics")
		var ok1, ok2 bool
		pending, ok1 = f.Value("payments_pending")
		oldest, ok2 = f.Value("payments_oldest_pending_age_seconds")
		if !ok1 || !ok2 {
			t.Fatal("no payments_pending or payments_oldest_pending_age_seconds")
		}
		return pending, oldest
	}

	if n, age := gauges(); n != 0 || age != 0 {
		t.Errorf("no payments yet: got %v pending, the oldest %vs old; want 0, 0", n, age)
	}
	s.pay(t, "settled", payReq(newOrderID(), 1000, "4242424242424242"), http.StatusCreated)
	var slow payment
	s.pay(t, "slow", payReq(newOrderID(), 2000, "4000000000000077"), http.StatusAccepted).Decode(t, &slow)
	// It was created ten minutes ago.
	if _, err := s.DB.Exec(context.Background(),
		`UPDATE payments SET created_at = now() - interval '10 minutes' WHERE id = $1`, slow.ID); err != nil {
		t.Fatal(err)
	}
	if n, age := gauges(); n != 1 || age < 600 || age > 660 {
		t.Errorf("a slow payment: got %v pending, the oldest %vs old; want 1, about 600", n, age)
	}

	eventually(t, "the reconciler settles the slow payment", func() bool { return s.get(t, slow.ID).Status != "pending" })
	if n, age := gauges(); n != 0 || age != 0 {
		t.Errorf("after the reconciler: got %v pending, the oldest %vs old; want 0, 0", n, age)
	}

	f := metricstest.Scrape(t, "http://"+health+"/metrics")
	if got, ok := f.Value("http_requests_total", "route", "/internal/payments/{id}", "method", "GET", "status", "200"); !ok || got < 1 {
		t.Errorf("got http_requests_total{/internal/payments/{id} GET 200} %v (present: %v), want the reads of the slow payment", got, ok)
	}
	if got := s.do(t, "GET", "/metrics", "", nil).Status; got != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's port: got %d, want 404", got)
	}
}
