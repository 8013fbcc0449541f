package discovery

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Transport returns a RoundTripper that sends requests for
// "http://<name>.service.consul/..." (or "<name>.service.<Domain>") to an
// instance of name picked by NextExcept, through base. The port written in the URL
// is ignored: the instance's port from the SRV record is used. The Host
// header keeps the logical name, so logs and virtual hosts on the peer see
// which service was asked for, not an address. Requests for other hosts go
// to base untouched. A nil base is a clone of http.DefaultTransport.
//
// The URL's host becomes an IP address, so HTTPS to such names would fail
// certificate checks; the Transport is meant for plain HTTP inside the
// cluster. Requests made with a context from WithAttempts avoid instances
// that earlier requests with the same context used.
func (r *Resolver) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &transport{r: r, base: base}
}

// Client returns an http.Client whose Transport is r.Transport(nil) and
// whose Timeout is timeout, the deadline of one whole call. Build it once
// and share it: each Client has its own connection pool.
func (r *Resolver) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: r.Transport(nil), Timeout: timeout}
}

// ClientOver is Client with base under the discovery transport (the
// mesh's, inside the cluster).
func (r *Resolver) ClientOver(base http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{Transport: r.Transport(base), Timeout: timeout}
}

type transport struct {
	r    *Resolver
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	name, ok := t.r.serviceName(req.URL.Hostname())
	if !ok {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	att, _ := ctx.Value(attemptsKey{}).(*attempts)
	inst, err := t.r.NextExcept(ctx, name, att.list()...)
	if err != nil {
		// RoundTrip owns the body, even when it fails.
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	att.add(inst.Addr)

	out := req.Clone(ctx)
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	out.URL.Host = inst.Addr
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", name, inst.Addr, err)
	}
	return resp, nil
}

// serviceName returns the service name in a host of the form
// "<name>.service.<domain>" or "<name>.service.consul".
func (r *Resolver) serviceName(host string) (string, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, domain := range []string{r.cfg.Domain, DefaultDomain} {
		if name, ok := strings.CutSuffix(host, ".service."+domain); ok && validName(name) {
			return name, true
		}
	}
	return "", false
}

// LookupHost resolves a host name the way a database driver asks for one
// (pgx's LookupFunc): "<name>.service.consul" becomes the "ip:port" of
// each healthy instance of name, from its SRV records, so that a
// connection string may name a service rather than an address and follow
// it when it moves; any other host goes to the system resolver.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	name, ok := r.serviceName(host)
	if !ok {
		return net.DefaultResolver.LookupHost(ctx, host)
	}
	insts, err := r.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(insts))
	for i, in := range insts {
		addrs[i] = in.Addr
	}
	return addrs, nil
}

type attemptsKey struct{}

// attempts is the list of instance addresses already used by requests that
// share a context from WithAttempts.
type attempts struct {
	mu    sync.Mutex
	addrs []string
}

func (a *attempts) list() []string {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.addrs)
}

func (a *attempts) add(addr string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addrs = append(a.addrs, addr)
}

// WithAttempts returns a context that remembers which instances the
// Transport sent requests to. Use it for every attempt of one retried call:
// each retry then lands on an instance not tried yet, and once all were
// tried the request fails at once with an error wrapping ErrNoInstances.
func WithAttempts(ctx context.Context) context.Context {
	return context.WithValue(ctx, attemptsKey{}, &attempts{})
}

// Attempted returns the instance addresses used so far by requests made
// with ctx, oldest first, or nil when ctx does not come from WithAttempts.
func Attempted(ctx context.Context) []string {
	att, _ := ctx.Value(attemptsKey{}).(*attempts)
	return att.list()
}
