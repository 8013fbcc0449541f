package ratelimit

import (
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
