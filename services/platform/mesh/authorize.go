package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// staleGrace is how long a decision is still used while the local agent
// does not answer: a blip of the agent must not cut every call, and a
// caller never allowed is never let in by it.
const staleGrace = time.Minute

// authorizer asks the local agent whether a caller may call this service
// (Consul's intentions, default deny) and reuses each decision for ttl,
// so that a changed intention reaches open connections within ttl.
type authorizer struct {
	agent   *api.Agent
	service string
	ttl     time.Duration

	mu        sync.Mutex
	decisions map[string]decision
}

type decision struct {
	allowed bool
	reason  string
	at      time.Time
}

func newAuthorizer(agent *api.Agent, service string, ttl time.Duration) *authorizer {
	return &authorizer{agent: agent, service: service, ttl: ttl, decisions: map[string]decision{}}
}

// ErrDenied is the error of a caller Consul's intentions do not allow.
type ErrDenied struct {
	Caller, Target, Reason string
}

func (e *ErrDenied) Error() string {
	return fmt.Sprintf("mesh: %s may not call %s: %s", e.Caller, e.Target, e.Reason)
}

// check returns nil when caller may call the service, an *ErrDenied when
// the intentions deny it, or another error when no decision can be had.
func (a *authorizer) check(caller identity, log hclog.Logger) error {
	uri := caller.String()
	now := time.Now()
	a.mu.Lock()
	d, ok := a.decisions[uri]
	a.mu.Unlock()
	if !ok || now.Sub(d.at) >= a.ttl {
		res, err := a.agent.ConnectAuthorize(&api.AgentAuthorizeParams{Target: a.service, ClientCertURI: uri, ClientCertSerial: caller.serial})
		switch {
		case err == nil:
			d = decision{allowed: res.Authorized, reason: res.Reason, at: now}
			a.mu.Lock()
			if old, had := a.decisions[uri]; had && old.allowed != d.allowed {
				log.Info("intention decision changed", "caller", caller.service, "allowed", d.allowed, "reason", d.reason)
			}
			a.decisions[uri] = d
			a.mu.Unlock()
		case ok && now.Sub(d.at) < staleGrace:
			log.Warn("the Consul agent did not authorise; using the last decision", "caller", caller.service, "error", err)
		default:
			log.Error("refused a caller: no decision from the Consul agent", "caller", caller.service, "error", err)
			return fmt.Errorf("mesh: cannot authorise %s: %w", uri, err)
		}
	}
	if !d.allowed {
		log.Warn("refused a caller: the intentions deny it", "caller", caller.service, "identity", uri, "reason", d.reason)
		return &ErrDenied{Caller: caller.service, Target: a.service, Reason: d.reason}
	}
	return nil
}

// connCaller is one connection's caller, read from its certificate at its
// first request and reused by the next ones (ConnContext). A connection's
// certificate cannot change: Go's TLS server never renegotiates.
type connCaller struct{ id atomic.Pointer[identity] }

type connCallerKey struct{}

// ConnContext gives each connection a place for its caller's identity, so
// that Authorize reads a connection's certificate once, not at every
// request (about 4 µs each, BenchmarkCall). Set it as the mesh server's
// http.Server.ConnContext; without it, each request reads the certificate.
func (m *Mesh) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connCallerKey{}, new(connCaller))
}

// requestCaller is the caller of r's connection, of this trust domain.
func (m *Mesh) requestCaller(r *http.Request) (identity, error) {
	cc, _ := r.Context().Value(connCallerKey{}).(*connCaller)
	if cc != nil {
		if id := cc.id.Load(); id != nil {
			// The trust domain is checked at every request all the same:
			// a CA change may have changed it since the connection opened.
			return *id, m.ofTrustDomain(*id)
		}
	}
	id, err := m.caller(*r.TLS)
	if err == nil && cc != nil {
		cc.id.Store(&id)
	}
	return id, err
}

// Authorize checks every request again, on connections opened before an
// intention changed: the request of a caller no longer allowed (within
// AuthorizeTTL of the change) is aborted, as its new connections are
// refused at the handshake, so that the caller sees the peer unavailable
// to it rather than an answer. The refusal is logged, naming the caller.
// When no decision can be had, the answer is 503 problem+json. Requests
// without a verified mesh peer (the plain health listener) pass.
func (m *Mesh) Authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		caller, err := m.requestCaller(r)
		if err == nil {
			err = m.authz.check(caller, m.log)
		}
		var denied *ErrDenied
		if errors.As(err, &denied) {
			// Closes an HTTP/1 connection, resets an HTTP/2 stream; the
			// server logs no stack for it.
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			httpx.Error(w, r, apierr.Errorf(apierr.Unavailable, "%v", err))
			return
		}
		next.ServeHTTP(w, r)
	})
}
