package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := New(Config{Rate: 2, Burst: 3, MaxClients: 10})
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: got ok %v wait %s, want refused for 500ms (2 tokens/s)", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another client shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a token did not come back after 500ms")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("after an hour, request %d refused: the bucket refills to its burst", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("the bucket refilled beyond its burst")
	}
}

func TestClientIdentity(t *testing.T) {
	t.Parallel()
	l := New(Config{Rate: 1, Burst: 1, MaxClients: 10, TrustedProxies: []string{"10.0.0.0/8"}})
	tests := []struct {
		name, remote, xff string
		subject           string
		want              string
	}{
		{"the address", "192.0.2.7:5555", "", "", "address:192.0.2.7"},
		{"a forwarded address from an untrusted peer is ignored", "192.0.2.7:5555", "198.51.100.1", "", "address:192.0.2.7"},
		{"through a trusted proxy, the client before it", "10.1.2.3:5555", "198.51.100.1, 10.9.9.9", "", "address:198.51.100.1"},
		{"a forged first hop does not win", "10.1.2.3:5555", "203.0.113.66, 198.51.100.1", "", "address:198.51.100.1"},
		{"an account, wherever it comes from", "192.0.2.7:5555", "", "acct-1", "account:acct-1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if tt.subject != "" {
			c := &authn.Claims{}
			c.Subject = tt.subject
			r = r.WithContext(authn.WithClaims(r.Context(), c))
		}
		if got := l.Client(r); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMiddlewareAnswers429(t *testing.T) {
	t.Parallel()
	l := New(Config{Rate: 0.25, Burst: 1, MaxClients: 10})
	h := httpx.Middleware(logging.ForTest(t), l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	do := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		return w
	}
	if w := do(); w.Code != http.StatusNoContent {
		t.Fatalf("first request: got %d", w.Code)
	}
	w := do()
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Content-Type") != httpx.ProblemContentType {
		t.Fatalf("second request: got %d %s, want 429 problem+json", w.Code, w.Header().Get("Content-Type"))
	}
	if s, _ := strconv.Atoi(w.Header().Get("Retry-After")); s != 4 {
		t.Errorf("got Retry-After %q, want 4 (one token every 4s)", w.Header().Get("Retry-After"))
	}
}

func TestDisabledAndSweep(t *testing.T) {
	t.Parallel()
	if ok, _ := New(Config{Rate: 0}).Allow("x"); !ok {
		t.Error("rate 0 must disable the limiter")
	}
	now := time.Unix(0, 0)
	l := New(Config{Rate: 1, Burst: 1, MaxClients: 2})
	l.now = func() time.Time { return now }
	l.Allow("a")
	l.Allow("b")
	now = now.Add(2 * time.Second)
	l.Allow("c") // a and b are idle and full again: dropped
	if len(l.buckets) != 1 {
		t.Errorf("got %d buckets, want 1 after the sweep", len(l.buckets))
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{Rate: -1, Burst: 1, MaxClients: 1},
		{Rate: 1, Burst: 0, MaxClients: 1},
		{Rate: 1, Burst: 1, MaxClients: 0},
		{Rate: 1, Burst: 1, MaxClients: 1, TrustedProxies: []string{"10.0.0.1"}},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: got no error", c)
		}
	}
	good := Config{Rate: 1, Burst: 1, MaxClients: 1, TrustedProxies: []string{"10.0.0.0/8"}}
	if err := good.Validate(); err != nil {
		t.Errorf("%+v: %v", good, err)
	}
}

// TestForgedForwardedFor: the client is the rightmost address of
// X-Forwarded-For that is not a trusted proxy, and only when the request
// came from a trusted proxy. What a client writes itself sits left of what
// the edge added (or, since the edge replaces the header, is gone): it
// never names the client.
func TestForgedForwardedFor(t *testing.T) {
	t.Parallel()
	l := New(Config{Rate: 1, Burst: 1, MaxClients: 10, TrustedProxies: []string{"127.0.0.1/32", "::1/128", "10.0.1.0/24"}})
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"the edge replaced the header: a loopback client", "127.0.0.1:40000", []string{"127.0.0.1"}, "127.0.0.1"},
		{"the edge's address for the client", "10.0.1.5:40000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"forged entries left of the edge's", "10.0.1.5:40000", []string{"203.0.113.1, 203.0.113.2, 198.51.100.7"}, "198.51.100.7"},
		{"a forged header line before the edge's", "10.0.1.5:40000", []string{"203.0.113.1", "198.51.100.7"}, "198.51.100.7"},
		{"through two trusted hops", "127.0.0.1:40000", []string{"203.0.113.1, 198.51.100.7, 10.0.1.9"}, "198.51.100.7"},
		{"a forged trusted address does not hide the client", "10.0.1.5:40000", []string{"198.51.100.7, 10.0.1.200, 127.0.0.1"}, "198.51.100.7"},
		{"a client not behind a trusted proxy forges in vain", "198.51.100.7:40000", []string{"203.0.113.1"}, "198.51.100.7"},
		{"nothing forwarded: the proxy itself", "10.0.1.5:40000", nil, "10.0.1.5"},
		{"a garbled rightmost entry stops at the proxy", "10.0.1.5:40000", []string{"198.51.100.7, not-an-address"}, "10.0.1.5"},
		{"an address with a port is garbled", "10.0.1.5:40000", []string{"198.51.100.7:5555"}, "10.0.1.5"},
		{"IPv6 through the loopback proxy", "[::1]:40000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"an IPv4-mapped proxy address is trusted", "[::ffff:127.0.0.1]:40000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"every hop trusted: the proxy", "127.0.0.1:40000", []string{"10.0.1.9, 127.0.0.1"}, "127.0.0.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := l.Address(r); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestForgedHeadersShareOneBucket: a client that writes a new
// X-Forwarded-For on every request still has one bucket, whether it calls
// directly or through the edge: after Burst requests, 429.
func TestForgedHeadersShareOneBucket(t *testing.T) {
	t.Parallel()
	const burst = 5
	for _, tt := range []struct {
		name   string
		remote string
		// xff is what arrives for the i-th request: the client's forgery,
		// then what the edge appended (a proxy that appends, the worst
		// case: HAProxy now replaces the header).
		xff func(i int) string
	}{
		{"directly", "198.51.100.7:40000", func(i int) string { return fmt.Sprintf("203.0.113.%d", i) }},
		{"through the edge", "10.0.1.5:40000", func(i int) string { return fmt.Sprintf("203.0.113.%d, 198.51.100.7", i) }},
	} {
		l := New(Config{Rate: 0.001, Burst: burst, MaxClients: 1000, TrustedProxies: []string{"10.0.1.0/24"}})
		h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		allowed := 0
		for i := range 3 * burst {
			r := httptest.NewRequest(http.MethodGet, "/v1/products", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Forwarded-For", tt.xff(i))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code == http.StatusNoContent {
				allowed++
			}
		}
		if allowed != burst {
			t.Errorf("%s: %d of %d requests with forged addresses allowed, want %d (one bucket)", tt.name, allowed, 3*burst, burst)
		}
	}
}
