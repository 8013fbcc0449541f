package main

import (
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// TestMetrics: the aggregator's /metrics, on its health listener, counts
// its requests by route template and its calls to each service by
// outcome, and reports each service's breaker. Every service is down
// (nothing listens where they are said to be): a product's page is a 503
// counted under its route's template, inventory's calls are counted
// unavailable, and its breaker opens.
func TestMetrics(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	port, health := porttest.Free(t), servicetest.Addr(t)
	env := map[string]string{
		"HTTP_ADDR":                     fmt.Sprintf("127.0.0.1:%d", port),
		"HTTP_HEALTH_ADDR":              health,
		"HTTP_SHUTDOWN_TIMEOUT":         "2s",
		"AGGREGATOR_AUTH_URL":           down,
		"AGGREGATOR_INVENTORY_URL":      down,
		"AGGREGATOR_ORDERS_URL":         down,
		"AGGREGATOR_PAYMENT_URL":        down,
		"AUTH_JWKS_URL":                 down + "/.well-known/jwks.json",
		"AGGREGATOR_BREAKER_FAILURES":   "3",
		"AGGREGATOR_BREAKER_OPEN_FOR":   "1m",
		"AGGREGATOR_RECOVERY_INTERVAL":  "1h",
		"AGGREGATOR_RECONCILE_INTERVAL": "1h",
	}
	// No stack: the aggregator alone.
	a := new(stack).startAggregatorEnv(t, port, env)

	for range 2 {
		resp, err := http.Get(a.URL + "/v1/products/" + uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a product with inventory down: got %d, want 503", resp.StatusCode)
		}
	}

	f := metricstest.Scrape(t, "http://"+health+"/metrics")
	if got, ok := f.Value("http_requests_total", "route", "/v1/products/{id}", "method", "GET", "status", "503"); !ok || got != 2 {
		t.Errorf("got http_requests_total{/v1/products/{id} GET 503} %v (present: %v), want 2", got, ok)
	}
	// Each call is tried up to AGGREGATOR_RETRY_ATTEMPTS (3) times: the
	// first call's attempts open the breaker, the second call is refused.
	if got, ok := f.Value("peer_calls_total", "peer", "inventory", "outcome", "unavailable"); !ok || got < 2 {
		t.Errorf("got peer_calls_total{inventory unavailable} %v (present: %v), want at least 2", got, ok)
	}
	if got, ok := f.Value("peer_calls_total", "peer", "inventory", "outcome", "error"); !ok || got != 0 {
		t.Errorf("got peer_calls_total{inventory error} %v (present: %v), want a series at 0", got, ok)
	}
	if got, ok := f.Value("peer_breaker_state", "peer", "inventory"); !ok || got != 2 {
		t.Errorf("got peer_breaker_state{inventory} %v (present: %v), want 2 (open)", got, ok)
	}
	for _, p := range []string{"auth", "orders", "payment"} {
		if _, ok := f.Value("peer_breaker_state", "peer", p); !ok {
			t.Errorf("no peer_breaker_state{%s}", p)
		}
	}
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's port: got %d, want 404", resp.StatusCode)
	}
}
