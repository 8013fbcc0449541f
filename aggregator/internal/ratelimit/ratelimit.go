// Package ratelimit limits requests per client at the edge of the public
// API with token buckets: each client has Burst tokens, refilled at Rate
// per second; a request takes one, and a client with none left is answered
// 429 with Retry-After (the time until its next token).
//
// A client is the account of a valid bearer token, else the remote
// address — when the request came through a trusted proxy, the rightmost
// address of X-Forwarded-For that is not one, so that clients behind the
// edge do not share one bucket. The edge (HAProxy) replaces whatever
// X-Forwarded-For a client sent with the address it saw, and the trusted
// proxies are exactly the edge's addresses (Terraform's trusted_proxies):
// a forged header names no one.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Config is the limiter's part of the configuration.
type Config struct {
	// Rate is the tokens a client gets back per second; 0 disables the
	// limiter.
	Rate float64 `env:"AGGREGATOR_RATE_LIMIT" default:"20"`
	// Burst is the most tokens a client can hold.
	Burst int `env:"AGGREGATOR_RATE_BURST" default:"40"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed:
	// the edge's addresses, no more (a trusted address that is not the
	// edge lets its clients choose their bucket).
	TrustedProxies []string `env:"AGGREGATOR_TRUSTED_PROXIES" default:"127.0.0.1/32,::1/128"`
	// MaxClients bounds the buckets kept; idle ones are dropped first.
	MaxClients int `env:"AGGREGATOR_RATE_MAX_CLIENTS" default:"100000"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, errors.New("AGGREGATOR_RATE_LIMIT must be a non-negative number of requests per second (0 disables it)"))
	}
	if c.Rate > 0 && c.Burst < 1 {
		errs = append(errs, errors.New("AGGREGATOR_RATE_BURST must be at least 1"))
	}
	if c.MaxClients < 1 {
		errs = append(errs, errors.New("AGGREGATOR_RATE_MAX_CLIENTS must be at least 1"))
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("AGGREGATOR_TRUSTED_PROXIES: %q is not a CIDR like 10.0.0.0/8", p))
		}
	}
	return errors.Join(errs...)
}

// Limiter holds one token bucket per client. It is safe for concurrent
// use.
type Limiter struct {
	rate    float64
	burst   float64
	max     int
	trusted []netip.Prefix
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter for cfg (validated).
func New(cfg Config) *Limiter {
	l := &Limiter{rate: cfg.Rate, burst: float64(cfg.Burst), max: cfg.MaxClients, now: time.Now, buckets: map[string]*bucket{}}
	for _, p := range cfg.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			l.trusted = append(l.trusted, pfx)
		}
	}
	return l
}

// Allow takes a token of client's bucket; when there is none it returns
// false and how long until there is.
func (l *Limiter) Allow(client string) (ok bool, retryAfter time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets that are full again (their clients have been
// idle long enough to be forgotten), and, if that is not enough, all.
func (l *Limiter) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		clear(l.buckets)
	}
}

// Middleware answers 429 to a client over its limit. It runs after the
// token middleware, whose claims name the client.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.Allow(l.Client(r))
		if !ok {
			httpx.Error(w, r, apierr.RetryLater(apierr.TooManyRequests, max(wait, time.Second),
				errors.New("too many requests; slow down and retry after the Retry-After delay")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Client names the client of r: its account, or its address.
func (l *Limiter) Client(r *http.Request) string {
	if c, ok := authn.FromContext(r.Context()); ok {
		return "account:" + c.Subject
	}
	return "address:" + l.Address(r)
}

// Address is r's client address: its remote address, or, when that is a
// trusted proxy, the last address of X-Forwarded-For that is not one. Auth
// is told it, so that its lock-out counts failures per client.
func (l *Limiter) Address(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !l.isTrusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a forged or garbled entry: stop at the proxy
		}
		if !l.isTrusted(hop) {
			return hop.String()
		}
	}
	return host
}

func (l *Limiter) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
