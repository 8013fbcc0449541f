package peer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
)

// gathered reads one series of reg, failing the test when there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metricstest.Gather(t, reg).Value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%q", name, labels)
	}
	return v
}

// TestMetricsFollowCallsAndBreaker: the calls of a peer are counted by
// outcome (a 4xx as the client's error, never the peer's), and its
// breaker's state is read at each scrape as it closes, opens and probes.
func TestMetricsFollowCallsAndBreaker(t *testing.T) {
	t.Parallel()
	var status atomic.Int64
	status.Store(http.StatusBadRequest)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) })
	m := NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	const openFor = 200 * time.Millisecond
	p := newPeer(Config{Name: "orders", Attempts: 1, Metrics: m, Breaker: BreakerConfig{Failures: 2, OpenFor: openFor}})
	calls := func(outcome string) float64 {
		return gathered(t, reg, "peer_calls_total", "peer", "orders", "outcome", outcome)
	}
	breaker := func() float64 {
		return gathered(t, reg, "peer_breaker_state", "peer", "orders")
	}
	call := func() {
		t.Helper()
		var pe *Error
		if _, err := get(t, p, t.Context(), http.MethodGet, srv.URL); err != nil && !errors.As(err, &pe) {
			t.Fatal(err)
		}
	}

	if got := calls(outcomeError); got != 0 {
		t.Errorf("before any call: got %v errors, want a series at 0", got)
	}
	for range 3 {
		call()
	}
	if got := calls(outcomeClientError); got != 3 {
		t.Errorf("after three 400s: got %v client errors, want 3", got)
	}
	if got := calls(outcomeError); got != 0 {
		t.Errorf("after three 400s: got %v errors, want 0 (a 4xx is the client's fault)", got)
	}
	if got := breaker(); got != 0 {
		t.Errorf("after three 400s: got breaker %v, want 0 (closed)", got)
	}

	status.Store(http.StatusInternalServerError)
	call()
	call()
	if got := calls(outcomeError); got != 2 {
		t.Errorf("after two 500s: got %v errors, want 2", got)
	}
	if got := breaker(); got != 2 {
		t.Errorf("after two 500s: got breaker %v, want 2 (open)", got)
	}
	hits := srv.hits.Load()
	call()
	if got := calls(outcomeUnavailable); got != 1 || srv.hits.Load() != hits {
		t.Errorf("a call while open: got %v unavailable and %d new requests, want 1 and none", got, srv.hits.Load()-hits)
	}
	if got := gathered(t, reg, "peer_call_duration_seconds", "peer", "orders"); got != 5 {
		t.Errorf("got %v timed attempts, want 5 (the refused one never went out)", got)
	}

	time.Sleep(openFor + 50*time.Millisecond)
	if got := breaker(); got != 1 {
		t.Errorf("after OpenFor: got breaker %v, want 1 (half-open)", got)
	}
	status.Store(http.StatusOK)
	call()
	if got := calls(outcomeOK); got != 1 {
		t.Errorf("a good probe: got %v ok, want 1", got)
	}
	if got := breaker(); got != 0 {
		t.Errorf("after a good probe: got breaker %v, want 0 (closed)", got)
	}
}

// TestMetricsOutcomesOfFailures: an attempt past its deadline is a
// timeout, a refused connection leaves the peer unavailable, and the
// caller's own budget running out is cancelled.
func TestMetricsOutcomesOfFailures(t *testing.T) {
	t.Parallel()
	slow := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	m := NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	p := newPeer(Config{Name: "payment", Attempts: 1, Timeout: 50 * time.Millisecond, Metrics: m, Breaker: BreakerConfig{Failures: 100}})
	q := newPeer(Config{Name: "inventory", Attempts: 1, Timeout: time.Minute, Metrics: m, Breaker: BreakerConfig{Failures: 100}})
	_, _ = get(t, p, t.Context(), http.MethodGet, slow.URL)
	_, _ = get(t, p, t.Context(), http.MethodGet, refused)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _ = get(t, q, ctx, http.MethodGet, slow.URL)

	for _, c := range []struct {
		peer, outcome string
		want          float64
	}{
		{"payment", outcomeTimeout, 1},
		{"payment", outcomeUnavailable, 1},
		{"payment", outcomeError, 0},
		{"inventory", outcomeCancelled, 1},
		{"inventory", outcomeError, 0},
	} {
		if got := gathered(t, reg, "peer_calls_total", "peer", c.peer, "outcome", c.outcome); got != c.want {
			t.Errorf("peer_calls_total{%s, %s}: got %v, want %v", c.peer, c.outcome, got, c.want)
		}
	}
}
