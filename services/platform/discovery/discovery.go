// Package discovery finds the healthy instances of a peer service through
// Consul DNS and spreads calls across them.
//
// Nomad registers every task in Consul with health checks, and Consul DNS
// answers SRV queries with the passing instances only. Asking DNS instead of
// the HTTP API keeps callers independent of Consul ACLs and clients, and lets
// the same names work for HAProxy and for Go code. The Resolver adds what a
// plain DNS lookup lacks: a short cache (Consul's default service TTL is 0),
// one query for many concurrent callers, a stale answer when the agent is
// briefly unreachable, and round-robin balancing with "try another instance"
// for retries.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
)

// ErrNoInstances reports that a service has no healthy instance: Consul does
// not know the name, every instance fails its checks, or a caller has already
// tried all of them. Callers answer it with a fast 503 rather than a retry.
var ErrNoInstances = errors.New("no healthy instances")

// Config tells a Resolver where Consul DNS listens and how long to trust its
// answers. Zero fields take the defaults shown in the default tags.
type Config struct {
	// DNSAddr is the host:port of a Consul agent's DNS interface.
	DNSAddr string `env:"CONSUL_DNS_ADDR" default:"127.0.0.1:8600"`
	// Domain is Consul's DNS domain, without dots around it.
	Domain string `env:"CONSUL_DNS_DOMAIN" default:"consul"`
	// Timeout bounds one resolution, including the TCP retry and any A/AAAA
	// follow-up queries.
	Timeout time.Duration `env:"DISCOVERY_TIMEOUT" default:"2s"`
	// TTLFloor is the shortest time an answer is cached. Consul serves
	// service records with TTL 0 unless told otherwise, which would mean a
	// DNS query per request. It is also how long a negative or stale answer
	// is kept before DNS is asked again.
	TTLFloor time.Duration `env:"DISCOVERY_TTL_FLOOR" default:"1s"`
	// TTLCap is the longest time an answer is cached, so that an instance
	// that turns critical stops receiving traffic soon even when Consul is
	// configured with long TTLs.
	TTLCap time.Duration `env:"DISCOVERY_TTL_CAP" default:"30s"`
}

// Instance is one healthy instance of a service.
type Instance struct {
	// Addr is the instance's "ip:port", ready for net.Dial.
	Addr string
}

// Default values for Config fields left zero.
const (
	DefaultDNSAddr  = "127.0.0.1:8600"
	DefaultDomain   = "consul"
	DefaultTimeout  = 2 * time.Second
	DefaultTTLFloor = time.Second
	DefaultTTLCap   = 30 * time.Second
)

// ednsSize is the UDP payload size advertised to Consul. Without EDNS
// Consul cuts UDP answers to three records (udp_answer_limit), silently
// unless enable_truncate is set, which would hide instances from balancing.
const ednsSize = 4096

// Resolver resolves service names to healthy instances through Consul DNS.
// It is safe for concurrent use; build one per process and share it.
type Resolver struct {
	cfg Config
	log hclog.Logger

	mu       sync.Mutex
	cache    map[string]*entry
	inflight map[string]*call
	next     map[string]*atomic.Uint64
}

// entry is a cached answer. A nil instances slice is a cached "no healthy
// instances".
type entry struct {
	instances []Instance
	expires   time.Time
}

// call is one DNS resolution shared by every caller that asked for the same
// name while it ran.
type call struct {
	done      chan struct{}
	instances []Instance
	err       error
}

// New returns a Resolver for cfg, with defaults for the zero fields. A
// TTLCap below TTLFloor is raised to TTLFloor.
func New(cfg Config, log hclog.Logger) *Resolver {
	if cfg.DNSAddr == "" {
		cfg.DNSAddr = DefaultDNSAddr
	}
	cfg.Domain = strings.Trim(strings.ToLower(cfg.Domain), ".")
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TTLFloor <= 0 {
		cfg.TTLFloor = DefaultTTLFloor
	}
	if cfg.TTLCap <= 0 {
		cfg.TTLCap = DefaultTTLCap
	}
	if cfg.TTLCap < cfg.TTLFloor {
		cfg.TTLCap = cfg.TTLFloor
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Resolver{
		cfg:      cfg,
		log:      log.Named("discovery"),
		cache:    make(map[string]*entry),
		inflight: make(map[string]*call),
		next:     make(map[string]*atomic.Uint64),
	}
}

// Resolve returns the healthy instances of the service name, sorted by
// address. It answers from the cache while the last answer is fresh, and
// otherwise asks Consul DNS once however many callers are waiting. When DNS
// fails and an earlier answer exists, that answer is returned and the
// failure is logged. The error wraps ErrNoInstances when Consul reports no
// healthy instance.
func (r *Resolver) Resolve(ctx context.Context, name string) ([]Instance, error) {
	insts, err := r.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(insts), nil
}

// NextExcept returns the next healthy instance of the service name in
// round-robin order (each name has its own counter), leaving out the
// instances whose Addr is in tried, so that a failed idempotent call can be
// retried on another instance. The error wraps ErrNoInstances when every
// healthy instance has been tried.
func (r *Resolver) NextExcept(ctx context.Context, name string, tried ...string) (Instance, error) {
	name = strings.ToLower(name)
	insts, err := r.resolve(ctx, name)
	if err != nil {
		return Instance{}, err
	}
	if len(tried) > 0 {
		left := make([]Instance, 0, len(insts))
		for _, in := range insts {
			if !slices.Contains(tried, in.Addr) {
				left = append(left, in)
			}
		}
		if len(left) == 0 {
			return Instance{}, fmt.Errorf("%s: all %d tried: %w", name, len(insts), ErrNoInstances)
		}
		insts = left
	}
	n := r.counter(name).Add(1) - 1
	return insts[n%uint64(len(insts))], nil
}

func (r *Resolver) counter(name string) *atomic.Uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.next[name]
	if c == nil {
		c = new(atomic.Uint64)
		r.next[name] = c
	}
	return c
}

// resolve returns the shared, sorted instance slice; callers must not
// modify it.
func (r *Resolver) resolve(ctx context.Context, name string) ([]Instance, error) {
	name = strings.ToLower(name)
	if !validName(name) {
		return nil, fmt.Errorf("resolve %q: not a service name", name)
	}
	r.mu.Lock()
	if e := r.cache[name]; e != nil && time.Now().Before(e.expires) {
		r.mu.Unlock()
		if e.instances == nil {
			return nil, fmt.Errorf("%s: %w", name, ErrNoInstances)
		}
		return e.instances, nil
	}
	c := r.inflight[name]
	if c == nil {
		c = &call{done: make(chan struct{})}
		r.inflight[name] = c
		// The query runs on its own, bounded by Timeout, so that a caller
		// whose context ends early does not fail the others waiting on it.
		go r.refresh(name, c)
	}
	r.mu.Unlock()

	select {
	case <-c.done:
		return c.instances, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve %s: %w", name, ctx.Err())
	}
}

// refresh asks DNS for name, updates the cache and completes c.
func (r *Resolver) refresh(name string, c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	insts, ttl, err := r.lookup(ctx, name)
	now := time.Now()

	r.mu.Lock()
	defer func() {
		delete(r.inflight, name)
		r.mu.Unlock()
		close(c.done)
	}()
	switch {
	case err == nil:
		ttl = min(max(ttl, r.cfg.TTLFloor), r.cfg.TTLCap)
		r.cache[name] = &entry{instances: insts, expires: now.Add(ttl)}
		c.instances = insts
		r.log.Trace("resolved", "service", name, "instances", len(insts), "ttl", ttl)
	case errors.Is(err, ErrNoInstances):
		// Consul answered: nobody is healthy. That is news, not a failure,
		// so it replaces any older answer.
		r.cache[name] = &entry{expires: now.Add(r.cfg.TTLFloor)}
		c.err = fmt.Errorf("%s: %w", name, err)
	default:
		old := r.cache[name]
		if old == nil || old.instances == nil {
			c.err = fmt.Errorf("resolve %s: %w", name, err)
			return
		}
		// Keep serving the last known instances, and wait a floor before
		// asking again so that a dead agent does not cost every call a
		// timeout.
		old.expires = now.Add(r.cfg.TTLFloor)
		c.instances = old.instances
		r.log.Warn("consul dns failed, using stale instances", "service", name, "instances", len(old.instances), "error", err)
	}
}

// lookup queries the SRV records of name and the addresses of their
// targets. It returns the instances sorted by address and the smallest TTL
// among the records used.
func (r *Resolver) lookup(ctx context.Context, name string) ([]Instance, time.Duration, error) {
	qname := "_" + name + "._tcp.service." + r.cfg.Domain + "."
	resp, err := r.exchange(ctx, qname, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	if resp.Rcode == dns.RcodeNameError {
		return nil, 0, ErrNoInstances
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, 0, fmt.Errorf("srv %s: %s", qname, dns.RcodeToString[resp.Rcode])
	}

	ttl := time.Duration(-1)
	minTTL := func(hdr *dns.RR_Header) {
		if d := time.Duration(hdr.Ttl) * time.Second; ttl < 0 || d < ttl {
			ttl = d
		}
	}
	addrs := make(map[string][]string)
	for _, rr := range resp.Extra {
		switch rr := rr.(type) {
		case *dns.A:
			k := dns.CanonicalName(rr.Hdr.Name)
			addrs[k] = append(addrs[k], rr.A.String())
		case *dns.AAAA:
			k := dns.CanonicalName(rr.Hdr.Name)
			addrs[k] = append(addrs[k], rr.AAAA.String())
		}
	}

	var insts []Instance
	for _, rr := range resp.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		minTTL(&srv.Hdr)
		target := dns.CanonicalName(srv.Target)
		ips, ok := addrs[target]
		if !ok {
			ips, err = r.addresses(ctx, target, minTTL)
			if err != nil {
				return nil, 0, err
			}
			addrs[target] = ips
		}
		// A target with several addresses is one instance; its first
		// address is as good as any.
		if len(ips) > 0 {
			insts = append(insts, Instance{Addr: net.JoinHostPort(ips[0], strconv.Itoa(int(srv.Port)))})
		}
	}
	if len(insts) == 0 {
		return nil, 0, ErrNoInstances
	}
	// Consul shuffles its answers; a stable order keeps round-robin fair
	// across refreshes.
	slices.SortFunc(insts, func(a, b Instance) int { return strings.Compare(a.Addr, b.Addr) })
	insts = slices.Compact(insts)
	return insts, max(ttl, 0), nil
}

// addresses asks for the A records of target, then AAAA when there is none,
// for answers that came without them in the additional section.
func (r *Resolver) addresses(ctx context.Context, target string, minTTL func(*dns.RR_Header)) ([]string, error) {
	var ips []string
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.exchange(ctx, target, qtype)
		if err != nil {
			return nil, err
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qtype], target, dns.RcodeToString[resp.Rcode])
		}
		for _, rr := range resp.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				minTTL(&rr.Hdr)
				ips = append(ips, rr.A.String())
			case *dns.AAAA:
				minTTL(&rr.Hdr)
				ips = append(ips, rr.AAAA.String())
			}
		}
		if len(ips) > 0 {
			break
		}
	}
	return ips, nil
}

// exchange sends one query over UDP and repeats it over TCP when the UDP
// answer is truncated.
func (r *Resolver) exchange(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.SetEdns0(ednsSize, false)
	udp := &dns.Client{Net: "udp", Timeout: r.cfg.Timeout, UDPSize: ednsSize}
	resp, _, err := udp.ExchangeContext(ctx, m, r.cfg.DNSAddr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], qname, err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	tcp := &dns.Client{Net: "tcp", Timeout: r.cfg.Timeout}
	resp, _, err = tcp.ExchangeContext(ctx, m, r.cfg.DNSAddr)
	if err != nil {
		return nil, fmt.Errorf("%s %s over tcp: %w", dns.TypeToString[qtype], qname, err)
	}
	return resp, nil
}

// validName reports whether name can be a single DNS label, which is what
// Consul requires of a service name reachable through DNS.
func validName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return false
		}
	}
	return true
}
