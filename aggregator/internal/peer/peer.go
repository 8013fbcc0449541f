// Package peer is how the aggregator calls the services: one Peer per
// service, used as the HttpRequestDoer of that service's generated client,
// so that every call, whatever the endpoint, gets the same protections:
//
//   - a deadline per attempt, never beyond the request's own budget;
//   - retries on another instance (discovery.WithAttempts): for idempotent
//     calls (GET, PUT, DELETE, a POST with an Idempotency-Key or marked with
//     Idempotent) after connection failures, timeouts and 502/503/504; for
//     any call when the connection could not be made at all (the request
//     never left, so repeating it is safe);
//   - a circuit breaker per peer (closed, open, half-open), so a peer that
//     is down costs its callers nothing but a fast error;
//   - a cap on the calls in flight per peer, so a slow peer cannot take
//     every goroutine and connection of the aggregator: beyond it a call
//     fails at once;
//   - the caller's Authorization and X-Request-ID forwarded.
//
// A call that the peer could not answer returns an *Error (its Reason says
// why); a peer that answered 5xx returns the response, and counts as a
// failure for the breaker. Two answers never count against the peer: a 4xx
// (the caller's request was at fault: the peer answered as designed), and
// a 503 that sheds load for that one request (see Shedding), which is not
// retried either: another attempt would only add to the load the peer is
// shedding.
package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/backoff"
	"github.com/mylittleshopping/shop/services/platform/discovery"
)

// Config is one peer's settings.
type Config struct {
	// Name is the service's name, in logs and errors ("inventory").
	Name string
	// BaseURL is the service's root: http://inventory.service.consul in the
	// cluster (resolved by discovery), or a fixed address.
	BaseURL string
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Attempts is how many times an idempotent call is tried in all.
	Attempts int
	// Backoff is the pause before the first retry; it doubles, with
	// jitter, for each further one.
	Backoff time.Duration
	// MaxInFlight caps the calls in flight to the peer.
	MaxInFlight int
	Breaker     BreakerConfig
	// Metrics, when set, counts the peer's calls and reports its breaker
	// (see Metrics).
	Metrics *Metrics
}

// Reason says why a call got no answer from its peer.
type Reason string

// The reasons of an Error.
const (
	// CircuitOpen: the breaker is open; the peer was not called.
	CircuitOpen Reason = "circuit open"
	// Busy: MaxInFlight calls are in flight already; the peer was not
	// called.
	Busy Reason = "too many calls in flight"
	// Unreachable: no healthy instance, or the connection failed.
	Unreachable Reason = "unreachable"
	// Timeout: the attempt's deadline passed.
	Timeout Reason = "timed out"
	// Cancelled: the caller's own deadline or cancellation ended the call.
	Cancelled Reason = "request budget exhausted"
)

// Error is a call that got no answer.
type Error struct {
	Peer   string
	Reason Reason
	// RetryAfter suggests when to try again (the rest of an open circuit).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Peer, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %v", e.Peer, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Peer calls one service. It implements the HttpRequestDoer of the
// generated clients. It is safe for concurrent use.
type Peer struct {
	cfg       Config
	transport http.RoundTripper
	breaker   *Breaker
	slots     chan struct{}
	log       hclog.Logger
}

// New returns a peer sending requests through transport (the discovery
// transport, wrapped to propagate request ids).
func New(cfg Config, transport http.RoundTripper, log hclog.Logger) *Peer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 1
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	p := &Peer{
		cfg:       cfg,
		transport: transport,
		breaker:   NewBreaker(cfg.Breaker),
		slots:     make(chan struct{}, cfg.MaxInFlight),
		log:       log.Named("peer").With("peer", cfg.Name),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.add(p)
	}
	return p
}

// Name is the peer's service name.
func (p *Peer) Name() string { return p.cfg.Name }

// BaseURL is the peer's root URL, for its generated client.
func (p *Peer) BaseURL() string { return p.cfg.BaseURL }

// State is the peer's circuit state.
func (p *Peer) State() State { return p.breaker.State() }

type idempotentKey struct{}

// Idempotent marks the calls made with ctx as safe to repeat: the peer's
// contract makes a POST idempotent (a reservation on an order id, an order
// transition). GET, HEAD, PUT, DELETE and requests carrying an
// Idempotency-Key are idempotent already.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

type authorizationKey struct{}

// WithAuthorization returns ctx carrying the caller's Authorization header,
// which every call made with ctx forwards (unless it sets its own).
func WithAuthorization(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	return context.WithValue(ctx, authorizationKey{}, header)
}

// Authorization returns the header WithAuthorization put in ctx.
func Authorization(ctx context.Context) string {
	h, _ := ctx.Value(authorizationKey{}).(string)
	return h
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	if req.Header.Get("Idempotency-Key") != "" {
		return true
	}
	v, _ := req.Context().Value(idempotentKey{}).(bool)
	return v
}

// Do sends req with the protections of the package comment.
func (p *Peer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	idem := idempotent(req)
	attempts := 1
	if req.Body == nil || req.GetBody != nil {
		attempts = p.cfg.Attempts
		// Each attempt of this call goes to an instance not tried yet.
		ctx = discovery.WithAttempts(ctx)
	}
	for i := 1; ; i++ {
		out := req.Clone(ctx)
		if i > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			out.Body = body
		}
		if h := Authorization(ctx); h != "" && out.Header.Get("Authorization") == "" {
			out.Header.Set("Authorization", h)
		}
		start := time.Now()
		resp, shed, err := p.attempt(ctx, out)
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.observe(p.cfg.Name, start, resp, shed, err)
		}
		if i >= attempts || shed || !retryable(resp, err, idem) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		p.log.Debug("retrying", "method", req.Method, "path", req.URL.Path, "attempt", i+1, "after", describe(resp, err))
		pause := backoff.Delay(i, p.cfg.Backoff, 0)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, &Error{Peer: p.cfg.Name, Reason: Cancelled, Err: ctx.Err()}
		}
	}
}

// retryable says whether another attempt may follow: for an idempotent
// call after a failure or a 502/503/504 (Do never retries a 503 that
// sheds load); for any call when the request never left (the connection
// could not be made), which is safe whatever the call does.
func retryable(resp *http.Response, err error, idem bool) bool {
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) || errors.Is(err, discovery.ErrNoInstances) {
			return false // no instance left (all tried, or none healthy)
		}
		switch pe.Reason {
		case Unreachable:
			return idem || neverSent(err)
		case Timeout:
			return idem
		}
		return false
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return idem
	}
	return false
}

// neverSent reports whether err is a failure to connect: the request did
// not reach the peer.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// attempt makes one call within the peer's limits; shed reports an answer
// that sheds load for this request (Shedding).
func (p *Peer) attempt(ctx context.Context, req *http.Request) (resp *http.Response, shed bool, err error) {
	select {
	case p.slots <- struct{}{}:
	default:
		return nil, false, &Error{Peer: p.cfg.Name, Reason: Busy, RetryAfter: time.Second}
	}
	release := func() { <-p.slots }
	done, retryIn, ok := p.breaker.Allow()
	if !ok {
		release()
		return nil, false, &Error{Peer: p.cfg.Name, Reason: CircuitOpen, RetryAfter: retryIn}
	}
	actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	resp, err = p.transport.RoundTrip(req.WithContext(actx))
	if err != nil {
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		release()
		switch {
		case ctx.Err() != nil:
			done(Ignored)
			return nil, false, &Error{Peer: p.cfg.Name, Reason: Cancelled, Err: ctx.Err()}
		case errors.Is(err, discovery.ErrNoInstances) && len(discovery.Attempted(ctx)) > 0:
			// Every instance was tried by this call's earlier attempts,
			// whose failures were counted already.
			done(Ignored)
			return nil, false, &Error{Peer: p.cfg.Name, Reason: Unreachable, Err: err}
		case timedOut:
			done(Failure)
			return nil, false, &Error{Peer: p.cfg.Name, Reason: Timeout, Err: err}
		default:
			done(Failure)
			return nil, false, &Error{Peer: p.cfg.Name, Reason: Unreachable, Err: err}
		}
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
		// Perhaps load shed for this request alone: the body says, and it
		// is small. It is read now, within the attempt's deadline.
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBusyBody))
		resp.Body.Close()
		cancel()
		release()
		if rerr != nil {
			done(Failure)
			return nil, false, &Error{Peer: p.cfg.Name, Reason: Unreachable, Err: fmt.Errorf("read a 503's body: %w", rerr)}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		shed = Shedding(resp.StatusCode, resp.Header, b)
		if shed {
			done(Ignored)
		} else {
			done(Failure)
		}
		return resp, shed, nil
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		done(Failure)
	} else {
		// Any status below 500 is an answer: a 4xx is the caller's fault
		// (bad input, a missing object, a conflict), never the peer's.
		done(Success)
	}
	// The attempt's deadline covers reading the body too: it ends when the
	// caller closes it, and so does the call's slot.
	resp.Body = &body{ReadCloser: resp.Body, end: func() { cancel(); release() }}
	return resp, false, nil
}

// BusySlug ends the problem type of a service's answer that sheds load for
// one request (the shop's contract between services): 503 with a
// Retry-After header in seconds and a problem whose type ends in /busy,
// as auth answers when too many password hashes are queued already.
const BusySlug = "busy"

// maxBusyBody bounds what is read of a 503 to tell whether it is Busy.
const maxBusyBody = 64 << 10

// Shedding reports whether an answer sheds load for its one request: 503, a
// Retry-After of whole seconds, and a problem+json body whose type ends in
// /busy. Such an answer is the peer working as designed: it does not count
// against the breaker, is not retried, and is passed on to the client (see
// package reply).
func Shedding(status int, header http.Header, body []byte) bool {
	if status != http.StatusServiceUnavailable {
		return false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(header.Get("Retry-After"))); err != nil || s < 0 {
		return false
	}
	if !strings.HasPrefix(header.Get("Content-Type"), "application/problem+json") {
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(body, &p) == nil && strings.HasSuffix(p.Type, "/"+BusySlug)
}

// body ends the attempt when the response body is closed.
type body struct {
	io.ReadCloser
	once sync.Once
	end  func()
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.end)
	return err
}
