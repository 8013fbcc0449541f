package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
)

// TestResolver runs every behaviour that needs Consul against one real
// agent. Each subtest owns its service names, so they run in parallel.
func TestResolver(t *testing.T) {
	t.Parallel()
	srv, client := startConsul(t)
	consulDNS := "127.0.0.1:" + strconv.Itoa(srv.Config.Ports.DNS)

	t.Run("balances across passing instances and drops a critical one", func(t *testing.T) {
		t.Parallel()
		a, b := startIdentity(t), startIdentity(t)
		registerTTL(t, client, "web", "web-a", a)
		checkB := registerTTL(t, client, "web", "web-b", b)
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: consulDNS, TTLFloor: 50 * time.Millisecond, TTLCap: 50 * time.Millisecond}, log)
		ctx := t.Context()

		both := []Instance{{Addr: a}, {Addr: b}}
		if b < a {
			both = []Instance{{Addr: b}, {Addr: a}}
		}
		waitFor(t, "both instances resolved", func() error {
			got, err := r.Resolve(ctx, "web")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(both, got); diff != "" {
				return fmt.Errorf("Resolve(web) mismatch (-want +got):\n%s", diff)
			}
			return nil
		})

		var picked []string
		for range 4 {
			in, err := r.NextExcept(ctx, "web")
			if err != nil {
				t.Fatalf("NextExcept(web): %v", err)
			}
			picked = append(picked, in.Addr)
		}
		assertAlternates(t, "NextExcept", picked, a, b)

		hc := r.Client(5 * time.Second)
		var served []string
		for range 4 {
			addr, host := get(t, ctx, hc, "http://web.service.consul:9999/whoami")
			if want := "web.service.consul:9999"; host != want {
				t.Errorf("Host header: got %q, want %q", host, want)
			}
			served = append(served, addr)
		}
		assertAlternates(t, "HTTP client", served, a, b)

		// A retried call never lands twice on the same instance.
		retryCtx := WithAttempts(ctx)
		first, _ := get(t, retryCtx, hc, "http://web.service.consul/whoami")
		second, _ := get(t, retryCtx, hc, "http://web.service.consul/whoami")
		if first == second {
			t.Errorf("retry: got %s twice, want two different instances", first)
		}
		if got, want := Attempted(retryCtx), []string{first, second}; !cmp.Equal(got, want) {
			t.Errorf("Attempted: got %v, want %v", got, want)
		}
		req, _ := http.NewRequestWithContext(retryCtx, http.MethodGet, "http://web.service.consul/whoami", nil)
		if resp, err := hc.Do(req); !errors.Is(err, ErrNoInstances) {
			if resp != nil {
				resp.Body.Close()
			}
			t.Errorf("third attempt: got error %v, want ErrNoInstances", err)
		}
		if _, err := r.NextExcept(ctx, "web", a); err != nil {
			t.Errorf("NextExcept(web, %s): %v", a, err)
		}

		if err := client.Agent().UpdateTTL(checkB, "test", api.HealthCritical); err != nil {
			t.Fatalf("fail check %s: %v", checkB, err)
		}
		waitFor(t, "critical instance dropped", func() error {
			got, err := r.Resolve(ctx, "web")
			if err != nil {
				return err
			}
			if diff := cmp.Diff([]Instance{{Addr: a}}, got); diff != "" {
				return fmt.Errorf("Resolve(web) mismatch (-want +got):\n%s", diff)
			}
			return nil
		})
		for range 3 {
			if addr, _ := get(t, ctx, hc, "http://web.service.consul/whoami"); addr != a {
				t.Errorf("after %s turned critical: got %s, want %s", b, addr, a)
			}
		}
	})

	t.Run("LookupHost answers a service name with its instances' ip:port", func(t *testing.T) {
		t.Parallel()
		a, b := startIdentity(t), startIdentity(t)
		registerTTL(t, client, "db", "db-a", a)
		registerTTL(t, client, "db", "db-b", b)
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: consulDNS, TTLFloor: 50 * time.Millisecond, TTLCap: 50 * time.Millisecond}, log)
		want := []string{a, b}
		slices.Sort(want)
		waitFor(t, "both instances looked up", func() error {
			got, err := r.LookupHost(t.Context(), "DB.service.consul.")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("LookupHost(db.service.consul) mismatch (-want +got):\n%s", diff)
			}
			return nil
		})
		if _, err := r.LookupHost(t.Context(), "nosuch.service.consul"); !errors.Is(err, ErrNoInstances) {
			t.Errorf("LookupHost(nosuch.service.consul): got %v, want ErrNoInstances", err)
		}
		// Other names are the system resolver's: Consul is not asked.
		got, err := r.LookupHost(t.Context(), "localhost")
		if err != nil || len(got) == 0 {
			t.Errorf("LookupHost(localhost) = %v, %v; want the system's addresses", got, err)
		}
		for _, addr := range got {
			if strings.Contains(addr, ":") && net.ParseIP(addr) == nil {
				t.Errorf("LookupHost(localhost) gave %q, want a bare address", addr)
			}
		}
	})

	t.Run("unknown or unhealthy names report ErrNoInstances", func(t *testing.T) {
		t.Parallel()
		// A TTL check starts critical; it is never set to passing here.
		err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "sick-1", Name: "sick", Address: "127.0.0.1", Port: 9,
			Check: &api.AgentServiceCheck{CheckID: "sick-1:ttl", TTL: "10m"},
		})
		if err != nil {
			t.Fatalf("register sick-1: %v", err)
		}
		t.Cleanup(func() { _ = client.Agent().ServiceDeregister("sick-1") })
		waitFor(t, "sick in the catalog", func() error {
			entries, _, err := client.Health().Service("sick", "", false, nil)
			if err != nil {
				return err
			}
			if len(entries) != 1 {
				return fmt.Errorf("got %d catalog entries, want 1", len(entries))
			}
			return nil
		})
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: consulDNS}, log)
		for _, name := range []string{"nosuch", "sick"} {
			if _, err := r.Resolve(t.Context(), name); !errors.Is(err, ErrNoInstances) {
				t.Errorf("Resolve(%s): got error %v, want ErrNoInstances", name, err)
			}
			if _, err := r.NextExcept(t.Context(), name); !errors.Is(err, ErrNoInstances) {
				t.Errorf("NextExcept(%s): got error %v, want ErrNoInstances", name, err)
			}
		}
	})

	t.Run("caches answers and collapses concurrent lookups", func(t *testing.T) {
		t.Parallel()
		registerTTL(t, client, "cached", "cached-1", "127.0.0.1:9001")
		waitResolvable(t, consulDNS, "cached", 1)
		// The delay keeps the first query in flight while the others ask.
		proxy := startProxy(t, consulDNS, func(p *dnsProxy) { p.delay = 200 * time.Millisecond })
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: proxy.addr, TTLFloor: time.Minute, TTLCap: time.Minute}, log)

		const callers = 16
		errs := make(chan error, callers)
		for range callers {
			go func() {
				_, err := r.Resolve(t.Context(), "cached")
				errs <- err
			}()
		}
		for range callers {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Resolve(cached): %v", err)
			}
		}
		if got := proxy.count("SRV"); got != 1 {
			t.Errorf("SRV queries for %d concurrent callers: got %d, want 1", callers, got)
		}
		if _, err := r.Resolve(t.Context(), "cached"); err != nil {
			t.Fatalf("Resolve(cached) again: %v", err)
		}
		if got := proxy.count("SRV"); got != 1 {
			t.Errorf("SRV queries after a lookup within the TTL: got %d, want 1", got)
		}
	})

	t.Run("serves the stale answer when dns is unreachable", func(t *testing.T) {
		t.Parallel()
		registerTTL(t, client, "stale", "stale-1", "127.0.0.1:9002")
		waitResolvable(t, consulDNS, "stale", 1)
		proxy := startProxy(t, consulDNS, nil)
		log, logs := testLogger(t)
		r := New(Config{DNSAddr: proxy.addr, Timeout: 500 * time.Millisecond, TTLFloor: 50 * time.Millisecond, TTLCap: 50 * time.Millisecond}, log)
		want := []Instance{{Addr: "127.0.0.1:9002"}}
		if got, err := r.Resolve(t.Context(), "stale"); err != nil || !cmp.Equal(got, want) {
			t.Fatalf("Resolve(stale) before dns stops: got %v, %v, want %v, nil", got, err, want)
		}

		proxy.close()
		waitFor(t, "stale answer served", func() error {
			got, err := r.Resolve(t.Context(), "stale")
			if err != nil || !cmp.Equal(got, want) {
				return fmt.Errorf("Resolve(stale): got %v, %v, want %v, nil", got, err, want)
			}
			if !strings.Contains(logs.String(), "using stale instances") {
				return errors.New("no warning about stale instances logged yet")
			}
			return nil
		})
		if !strings.Contains(logs.String(), "[WARN]") {
			t.Errorf("stale fallback log: got %q, want a WARN line", logs.String())
		}
		// Without an earlier answer there is nothing to fall back on, and
		// an unreachable agent is not "no instances".
		if _, err := r.Resolve(t.Context(), "neverseen"); err == nil || errors.Is(err, ErrNoInstances) {
			t.Errorf("Resolve(neverseen) with dns down: got error %v, want a dns error", err)
		}
	})

	t.Run("retries over tcp when the udp answer is truncated", func(t *testing.T) {
		t.Parallel()
		registerTTL(t, client, "big", "big-1", "127.0.0.1:9003")
		waitResolvable(t, consulDNS, "big", 1)
		proxy := startProxy(t, consulDNS, func(p *dnsProxy) { p.truncateUDP = true })
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: proxy.addr}, log)
		got, err := r.Resolve(t.Context(), "big")
		if err != nil {
			t.Fatalf("Resolve(big): %v", err)
		}
		if diff := cmp.Diff([]Instance{{Addr: "127.0.0.1:9003"}}, got); diff != "" {
			t.Errorf("Resolve(big) mismatch (-want +got):\n%s", diff)
		}
		if got := proxy.countNet("tcp", "SRV"); got != 1 {
			t.Errorf("SRV queries over tcp: got %d, want 1", got)
		}
	})

	t.Run("asks for addresses missing from the additional section", func(t *testing.T) {
		t.Parallel()
		registerTTL(t, client, "bare", "bare-1", "127.0.0.1:9004")
		waitResolvable(t, consulDNS, "bare", 1)
		proxy := startProxy(t, consulDNS, func(p *dnsProxy) { p.stripExtra = true })
		log, _ := testLogger(t)
		r := New(Config{DNSAddr: proxy.addr}, log)
		got, err := r.Resolve(t.Context(), "bare")
		if err != nil {
			t.Fatalf("Resolve(bare): %v", err)
		}
		if diff := cmp.Diff([]Instance{{Addr: "127.0.0.1:9004"}}, got); diff != "" {
			t.Errorf("Resolve(bare) mismatch (-want +got):\n%s", diff)
		}
		if got := proxy.count("A"); got != 1 {
			t.Errorf("A queries: got %d, want 1", got)
		}
	})
}

func TestTransportPassesOtherHostsThrough(t *testing.T) {
	t.Parallel()
	plain := startIdentity(t)
	// Nothing listens at this DNS address: a lookup would fail the request.
	r := New(Config{DNSAddr: "127.0.0.1:1", Timeout: 200 * time.Millisecond}, hclog.NewNullLogger())
	addr, host := get(t, t.Context(), r.Client(5*time.Second), "http://"+plain+"/whoami")
	if addr != plain || host != plain {
		t.Errorf("got served by %s with Host %s, want %s with Host %s", addr, host, plain, plain)
	}
}

func TestServiceName(t *testing.T) {
	t.Parallel()
	r := New(Config{Domain: "shop.internal"}, nil)
	tests := []struct {
		host string
		want string
		ok   bool
	}{
		{"inventory.service.consul", "inventory", true},
		{"Inventory.Service.Consul.", "inventory", true},
		{"inventory.service.shop.internal", "inventory", true},
		{"inventory-db.service.consul", "inventory-db", true},
		{"v1.inventory.service.consul", "", false},
		{"service.consul", "", false},
		{".service.consul", "", false},
		{"inventory.service.example", "", false},
		{"inventory.node.consul", "", false},
		{"127.0.0.1", "", false},
		{"example.com", "", false},
	}
	for _, tt := range tests {
		got, ok := r.serviceName(tt.host)
		if got != tt.want || ok != tt.ok {
			t.Errorf("serviceName(%q): got %q, %t, want %q, %t", tt.host, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{DNSAddr: DefaultDNSAddr, Domain: DefaultDomain, Timeout: DefaultTimeout, TTLFloor: DefaultTTLFloor, TTLCap: DefaultTTLCap}},
		{"cap below floor", Config{Domain: ".Example.", TTLFloor: time.Minute, TTLCap: time.Second},
			Config{DNSAddr: DefaultDNSAddr, Domain: "example", Timeout: DefaultTimeout, TTLFloor: time.Minute, TTLCap: time.Minute}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, New(tt.in, nil).cfg); diff != "" {
			t.Errorf("%s: config mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestResolveRejectsBadNames(t *testing.T) {
	t.Parallel()
	r := New(Config{DNSAddr: "127.0.0.1:1", Timeout: 200 * time.Millisecond}, nil)
	for _, name := range []string{"", "a.b", "-web", "web_1", strings.Repeat("x", 64)} {
		if _, err := r.Resolve(t.Context(), name); err == nil || !strings.Contains(err.Error(), "not a service name") {
			t.Errorf("Resolve(%q): got error %v, want \"not a service name\"", name, err)
		}
	}
}

// startConsul starts a real Consul agent (the consul binary on PATH) and
// returns it with an API client once it has a leader and a healthy node.
func startConsul(t *testing.T) (*testutil.TestServer, *api.Client) {
	t.Helper()
	srv, err := testutil.NewTestServerConfigT(t, func(c *testutil.TestServerConfig) {
		c.LogLevel = "warn"
		c.Connect = nil
		c.Peering = nil
	})
	if err != nil {
		t.Fatalf("start consul agent (is consul on PATH?): %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// DNS returns an instance only when its node's serfHealth passes too.
	srv.WaitForSerfCheck(t)
	client, err := api.NewClient(&api.Config{Address: srv.HTTPAddr})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return srv, client
}

// registerTTL registers instance id of service name at addr with a passing
// TTL check, removes it at the end of the test, and returns the check ID.
func registerTTL(t *testing.T, client *api.Client, name, id, addr string) string {
	t.Helper()
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %s: %v", addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	checkID := id + ":ttl"
	err = client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: name, Address: host, Port: port,
		Check: &api.AgentServiceCheck{CheckID: checkID, TTL: "10m"},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	t.Cleanup(func() { _ = client.Agent().ServiceDeregister(id) })
	if err := client.Agent().UpdateTTL(checkID, "test", api.HealthPassing); err != nil {
		t.Fatalf("pass check %s: %v", checkID, err)
	}
	return checkID
}

// waitResolvable waits until Consul DNS itself answers name with n
// instances, so that a test starts from a settled catalog.
func waitResolvable(t *testing.T, dnsAddr, name string, n int) {
	t.Helper()
	r := New(Config{DNSAddr: dnsAddr, TTLFloor: time.Millisecond, TTLCap: time.Millisecond}, nil)
	waitFor(t, name+" in consul dns", func() error {
		got, err := r.Resolve(t.Context(), name)
		if err != nil {
			return err
		}
		if len(got) != n {
			return fmt.Errorf("got %d instances, want %d", len(got), n)
		}
		return nil
	})
}

// waitFor polls cond until it returns nil, failing the test after 15s.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("wait for %s: %v", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startIdentity starts an HTTP server on 127.0.0.1 that answers every
// request with its own address and the Host header it received, and
// returns its address.
func startIdentity(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
		fmt.Fprintf(w, "%s %s", self, r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// get fetches url and returns the address and Host header the identity
// server reported.
func get(t *testing.T, ctx context.Context, c *http.Client, url string) (addr, host string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("new request %s: %v", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	addr, host, _ = strings.Cut(string(body), " ")
	return addr, host
}

// assertAlternates checks that got uses a and b in turn.
func assertAlternates(t *testing.T, what string, got []string, a, b string) {
	t.Helper()
	for i, addr := range got {
		if addr != a && addr != b {
			t.Errorf("%s pick %d: got %s, want %s or %s", what, i, addr, a, b)
		}
		if i > 0 && addr == got[i-1] {
			t.Errorf("%s picks: got %v, want %s and %s alternating", what, got, a, b)
			return
		}
	}
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// testLogger returns a logger into a buffer that is printed when the test
// fails. It is not tied to t.Log, because the resolver may still log from a
// background lookup after the test has returned.
func testLogger(t *testing.T) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("resolver log:\n%s", buf)
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Trace, Output: buf}), buf
}

// dnsProxy forwards DNS queries, over the network they came in on, to a
// real Consul agent. It counts them, and can slow them down or alter the
// answers the way a large or unusual answer would look.
type dnsProxy struct {
	upstream    string
	addr        string
	delay       time.Duration
	truncateUDP bool // answer UDP queries with an empty, truncated message
	stripExtra  bool // drop A/AAAA records from the additional section

	mu      sync.Mutex
	counts  map[string]int // by "network qtype"
	servers []*dns.Server
	once    sync.Once
}

// startProxy starts a dnsProxy to upstream on one loopback port for both
// UDP and TCP; configure, when not nil, sets its options first.
func startProxy(t *testing.T, upstream string, configure func(*dnsProxy)) *dnsProxy {
	t.Helper()
	p := &dnsProxy{upstream: upstream, counts: make(map[string]int)}
	if configure != nil {
		configure(p)
	}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatalf("listen tcp next to udp: %v", err)
		}
	}
	p.addr = pc.LocalAddr().String()
	p.servers = []*dns.Server{{PacketConn: pc, Handler: p}, {Listener: ln, Handler: p}}
	for _, s := range p.servers {
		started := make(chan struct{})
		failed := make(chan error, 1)
		s.NotifyStartedFunc = func() { close(started) }
		go func() { failed <- s.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			t.Fatalf("start dns proxy: %v", err)
		}
	}
	t.Cleanup(p.close)
	return p
}

func (p *dnsProxy) close() {
	p.once.Do(func() {
		for _, s := range p.servers {
			_ = s.Shutdown()
		}
	})
}

func (p *dnsProxy) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	network := w.LocalAddr().Network()
	if len(req.Question) > 0 {
		p.mu.Lock()
		p.counts[network+" "+dns.TypeToString[req.Question[0].Qtype]]++
		p.mu.Unlock()
	}
	time.Sleep(p.delay)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(req, p.upstream)
	if err != nil {
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
	}
	if network == "udp" && p.truncateUDP {
		resp.Truncated = true
		resp.Answer = nil
		resp.Extra = onlyOPT(resp.Extra)
	}
	if p.stripExtra {
		resp.Extra = onlyOPT(resp.Extra)
	}
	_ = w.WriteMsg(resp)
}

// count returns the number of queries of qtype over any network.
func (p *dnsProxy) count(qtype string) int {
	return p.countNet("udp", qtype) + p.countNet("tcp", qtype)
}

// countNet returns the number of queries of qtype over network.
func (p *dnsProxy) countNet(network, qtype string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[network+" "+qtype]
}

func onlyOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			out = append(out, rr)
		}
	}
	return out
}
