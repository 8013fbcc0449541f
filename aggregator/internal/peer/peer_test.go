package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

func TestBreakerStates(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	b := NewBreaker(BreakerConfig{Failures: 3, OpenFor: 5 * time.Second, Probes: 1})
	b.now = func() time.Time { return now }
	call := func(o Outcome) bool {
		done, _, ok := b.Allow()
		if ok {
			done(o)
		}
		return ok
	}
	steps := []struct {
		name    string
		advance time.Duration
		outcome Outcome
		allowed bool
		after   State
	}{
		{"failure 1", 0, Failure, true, Closed},
		{"a success resets the count", 0, Success, true, Closed},
		{"failure 1 again", 0, Failure, true, Closed},
		{"failure 2", 0, Failure, true, Closed},
		{"ignored outcomes do not count", 0, Ignored, true, Closed},
		{"failure 3 opens", 0, Failure, true, Open},
		{"open: refused", time.Second, Success, false, Open},
		{"half-open after OpenFor: a failed probe opens again", 5 * time.Second, Failure, true, Open},
		{"open again: refused", time.Second, Success, false, Open},
		{"a good probe closes", 5 * time.Second, Success, true, Closed},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if got := call(s.outcome); got != s.allowed {
			t.Fatalf("%s: got allowed %v, want %v", s.name, got, s.allowed)
		}
		if got := b.State(); got != s.after {
			t.Fatalf("%s: got state %s, want %s", s.name, got, s.after)
		}
	}

	// Half-open lets Probes calls through at once, no more.
	b.trip()
	now = now.Add(6 * time.Second)
	done, _, ok := b.Allow()
	if !ok {
		t.Fatal("first probe refused")
	}
	if _, retryIn, ok := b.Allow(); ok || retryIn <= 0 {
		t.Fatalf("second concurrent probe: got allowed %v retryIn %s, want refused with a delay", ok, retryIn)
	}
	done(Ignored) // the probe's caller gave up: the slot is free again
	if _, _, ok := b.Allow(); !ok {
		t.Fatal("probe slot not freed by an ignored outcome")
	}
}

// server counts the requests it gets and answers them with handler.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, handler http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func newPeer(cfg Config) *Peer {
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	return New(cfg, httpx.PropagateRequestID{Base: http.DefaultTransport.(*http.Transport).Clone()}, logging.NewNull())
}

func get(t *testing.T, p *Peer, ctx context.Context, method, url string, header ...string) (*http.Response, error) {
	t.Helper()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(`{}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		header   []string
		ctx      func(context.Context) context.Context
		wantHits int64
		want     int
	}{
		{"GET is retried", http.MethodGet, nil, nil, 3, 200},
		{"POST is not", http.MethodPost, nil, nil, 1, 503},
		{"POST with an Idempotency-Key is", http.MethodPost, []string{"Idempotency-Key", "k1"}, nil, 3, 200},
		{"POST marked idempotent is", http.MethodPost, nil, Idempotent, 3, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if b, _ := io.ReadAll(r.Body); r.Method == http.MethodPost && string(b) != `{}` {
					t.Errorf("attempt %d got body %q, want the body again", n.Load()+1, b)
				}
				if n.Add(1) < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			p := newPeer(Config{Attempts: 3, Backoff: time.Millisecond, Breaker: BreakerConfig{Failures: 10}})
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			resp, err := get(t, p, ctx, tt.method, srv.URL, tt.header...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want || srv.hits.Load() != tt.wantHits {
				t.Errorf("got %d after %d requests, want %d after %d", resp.StatusCode, srv.hits.Load(), tt.want, tt.wantHits)
			}
		})
	}
}

func TestCircuitOpensAndFailsFast(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // connections are refused from now on
	// A POST is not idempotent, but a refused connection means it never
	// left: it is tried again (three attempts, three failures).
	p := newPeer(Config{Attempts: 3, Breaker: BreakerConfig{Failures: 3, OpenFor: time.Minute}})
	_, err = get(t, p, t.Context(), http.MethodPost, url)
	var pe *Error
	if !errors.As(err, &pe) || pe.Reason != Unreachable {
		t.Fatalf("got %v, want unreachable", err)
	}
	if p.State() != Open {
		t.Fatalf("got state %s after one call of 3 refused attempts, want open", p.State())
	}
	start := time.Now()
	_, err = get(t, p, t.Context(), http.MethodGet, url)
	if !errors.As(err, &pe) || pe.Reason != CircuitOpen || pe.RetryAfter <= 0 {
		t.Fatalf("got %v, want circuit open with a retry delay", err)
	}
	if took := time.Since(start); took > 5*time.Millisecond {
		t.Errorf("an open circuit took %s to answer", took)
	}
}

func TestCapsCallsInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	p := newPeer(Config{MaxInFlight: 1, Attempts: 3})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = get(t, p, context.Background(), http.MethodGet, srv.URL) })
	<-entered
	_, err := get(t, p, t.Context(), http.MethodGet, srv.URL)
	var pe *Error
	if !errors.As(err, &pe) || pe.Reason != Busy {
		t.Errorf("got %v, want busy while the slot is taken", err)
	}
	close(release)
	wg.Wait()
	if _, err := get(t, p, t.Context(), http.MethodGet, srv.URL); err != nil {
		t.Errorf("after the slot is freed: %v", err)
	}
	if p.State() != Closed {
		t.Errorf("busy refusals moved the breaker to %s", p.State())
	}
}

func TestAttemptDeadlineAndCallerBudget(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	p := newPeer(Config{Timeout: 50 * time.Millisecond, Attempts: 2, Breaker: BreakerConfig{Failures: 2}})
	start := time.Now()
	_, err := get(t, p, t.Context(), http.MethodGet, srv.URL)
	var pe *Error
	if !errors.As(err, &pe) || pe.Reason != Timeout {
		t.Fatalf("got %v, want timed out", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("two attempts of 50ms took %s", took)
	}
	if p.State() != Open {
		t.Errorf("got state %s after two timeouts, want open", p.State())
	}

	// The caller's own budget running out says nothing about the peer.
	q := newPeer(Config{Timeout: time.Minute, Attempts: 1, Breaker: BreakerConfig{Failures: 1}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = get(t, q, ctx, http.MethodGet, srv.URL)
	if !errors.As(err, &pe) || pe.Reason != Cancelled {
		t.Fatalf("got %v, want cancelled", err)
	}
	if q.State() != Closed {
		t.Errorf("the caller's deadline opened the circuit")
	}
}

func TestForwardsAuthorizationAndRequestID(t *testing.T) {
	t.Parallel()
	var auth, id, own string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			own = r.Header.Get("Authorization")
			return
		}
		auth, id = r.Header.Get("Authorization"), r.Header.Get(httpx.RequestIDHeader)
	})
	p := newPeer(Config{})
	ctx := WithAuthorization(httpx.WithRequestID(t.Context(), "req-7"), "Bearer user-token")
	if _, err := get(t, p, ctx, http.MethodGet, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer user-token" || id != "req-7" {
		t.Errorf("got Authorization %q and X-Request-ID %q, want the caller's", auth, id)
	}
	if _, err := get(t, p, ctx, http.MethodGet, srv.URL+"/own", "Authorization", "Bearer service"); err != nil {
		t.Fatal(err)
	}
	if own != "Bearer service" {
		t.Errorf("got Authorization %q, want the call's own", own)
	}
}

// TestClientErrorsNeverCount: a peer answering 4xx (the caller's bad
// input, a missing object, a conflict) answered as designed: however many,
// its circuit stays closed, and none is retried. A 500 does count, so the
// same breaker opens on two of them.
func TestClientErrorsNeverCount(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", httpx.ProblemContentType)
				w.WriteHeader(status)
				io.WriteString(w, `{"type":"https://mylittleshopping.dev/problems/invalid-request","status":400}`)
			})
			p := newPeer(Config{Attempts: 3, Backoff: time.Millisecond, Breaker: BreakerConfig{Failures: 2, OpenFor: time.Minute}})
			for i := range 20 {
				resp, err := get(t, p, t.Context(), http.MethodGet, srv.URL)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if resp.StatusCode != status {
					t.Fatalf("call %d: got %d, want %d", i+1, resp.StatusCode, status)
				}
			}
			if got := p.State(); got != Closed {
				t.Errorf("got state %s after 20 answers %d, want closed", got, status)
			}
			if got := srv.hits.Load(); got != 20 {
				t.Errorf("got %d requests for 20 calls, want 20 (a 4xx is never retried)", got)
			}
		})
	}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	p := newPeer(Config{Attempts: 1, Breaker: BreakerConfig{Failures: 2, OpenFor: time.Minute}})
	for range 2 {
		if _, err := get(t, p, t.Context(), http.MethodGet, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.State(); got != Open {
		t.Errorf("got state %s after two 500s, want open", got)
	}
}

// TestSheddingIsNotAFailure: a 503 with Retry-After and a problem of type
// …/busy is the peer shedding load for that one request: the call returns
// it at once (one request, even for a GET that would be retried), it never
// opens the circuit, and the caller reads the peer's own answer. A 503
// that is not that (another type, no Retry-After, not problem+json) is
// still a failure, retried and counted.
func TestSheddingIsNotAFailure(t *testing.T) {
	t.Parallel()
	const busy = `{"type":"https://mylittleshopping.dev/problems/busy","title":"Service Unavailable","status":503,"detail":"too many password checks at once"}`
	const down = `{"type":"https://mylittleshopping.dev/problems/unavailable","title":"Service Unavailable","status":503}`
	tests := []struct {
		name        string
		retryAfter  string
		contentType string
		body        string
		wantHits    int64
		wantState   State
	}{
		{"busy", "2", httpx.ProblemContentType, busy, 10, Closed},
		{"unavailable", "2", httpx.ProblemContentType, down, 30, Open},
		{"busy without Retry-After", "", httpx.ProblemContentType, busy, 30, Open},
		{"busy with a date for Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT", httpx.ProblemContentType, busy, 30, Open},
		{"busy in text/plain", "2", "text/plain", busy, 30, Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, tt.body)
			})
			// Ten calls of up to three attempts each: thirty failed
			// attempts open the circuit, at the last one.
			p := newPeer(Config{Attempts: 3, Backoff: time.Millisecond, Breaker: BreakerConfig{Failures: 30, OpenFor: time.Minute}})
			for i := range 10 {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := p.Do(req)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || string(b) != tt.body || resp.Header.Get("Retry-After") != tt.retryAfter {
					t.Fatalf("call %d: got %d Retry-After %q %s, want the peer's 503 as it sent it", i+1, resp.StatusCode, resp.Header.Get("Retry-After"), b)
				}
			}
			if got := srv.hits.Load(); got != tt.wantHits {
				t.Errorf("got %d requests for 10 calls, want %d", got, tt.wantHits)
			}
			if got := p.State(); got != tt.wantState {
				t.Errorf("got state %s, want %s", got, tt.wantState)
			}
		})
	}
}
