package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// The tests run the real services: auth, inventory, orders and payment,
// each its own process built from its module, each on its own PostgreSQL
// database (pgtest), with the sandbox card processor (its own process too)
// and the mail sink (in-process). The aggregator runs in-process through
// run, as main runs it — or as its own process where a test kills it.

// bins are the binaries TestMain builds.
var bins = map[string]string{}

// builds lists what TestMain builds: name → module folder and package.
var builds = []struct{ name, dir, pkg string }{
	{"auth", "../services/auth", "."},
	{"inventory", "../services/inventory", "."},
	{"orders", "../services/orders", "."},
	{"payment", "../services/payment", "."},
	{"sandbox-processor", "../services/payment", "./cmd/sandbox-processor"},
	{"aggregator", ".", "."},
}

func TestMain(m *testing.M) {
	// A folder kept between runs: go build only relinks what changed.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("mls-aggregator-test-bin-%d", os.Getuid()))
	if err := buildAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	servicetest.Main(m)
}

func buildAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2) // the machines have 2 cores
	for _, b := range builds {
		out := filepath.Join(dir, b.name)
		bins[b.name] = out
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command("go", "build", "-o", out, b.pkg)
			cmd.Dir = b.dir
			if msg, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("build %s: %v\n%s", b.name, err, msg))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// proc is a service run as its own process.
type proc = servicetest.Process

// newProc prepares a process of the binary TestMain built for name on a
// free port; Start runs it. Its logs are checked for card numbers when the
// test ends, and their last lines printed when it fails.
func newProc(t *testing.T, name string, env map[string]string) *proc {
	t.Helper()
	if _, ok := env["HTTP_SHUTDOWN_TIMEOUT"]; !ok {
		env["HTTP_SHUTDOWN_TIMEOUT"] = "2s"
	}
	if _, ok := env["LOG_LEVEL"]; !ok {
		env["LOG_LEVEL"] = "debug"
	}
	env["HTTP_ADDR"] = servicetest.Addr(t)
	logs := &servicetest.Logs{}
	return servicetest.NewProcess(t, servicetest.Config{
		Name: name, Binary: bins[name], Env: env, Logs: logs,
		AfterStop: func() { checkNoCards(t, name, logs.String()) },
	})
}

// stack is every part of the shop but the aggregator.
type stack struct {
	sink                         *mailsink.Sink
	sinkURL                      string
	sandbox                      *proc
	auth, inventory, orders, pay *proc
	aggPort                      int // where verification links point
	inventoryEnv, ordersEnv      map[string]string
	mailEnv                      map[string]string
	shared                       map[string]string
	authJWKS                     string
	consul                       *api.Client
	consulDNS                    string
}

// startStack starts a Consul agent and the services, each on a fresh
// database, registered in Consul as Nomad registers them.
func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{aggPort: porttest.Free(t)}
	s.consul, s.consulDNS = startConsul(t)
	m := servicetest.StartMail(t, mailsink.Config{MaxMessages: 100000, MaxBodyBytes: 15 << 20})
	s.sink, s.sinkURL = m.Sink, m.URL
	mail := servicetest.Merge(m.Env("noreply@mylittleshopping.dev"), map[string]string{
		"OUTBOX_POLL_INTERVAL": "100ms", "OUTBOX_BACKOFF_BASE": "100ms", "OUTBOX_BACKOFF_MAX": "500ms",
	})
	with := servicetest.Merge
	public := fmt.Sprintf("http://127.0.0.1:%d", s.aggPort)

	s.sandbox = newProc(t, "sandbox-processor", map[string]string{"SANDBOX_API_KEY": "sk_test_shop", "SANDBOX_SLOW_DELAY": "3s"})
	s.sandbox.Start(t)

	s.auth = newProc(t, "auth", with(mail, map[string]string{
		"DATABASE_URL":    pgtest.URL(t),
		"AUTH_VERIFY_URL": public + "/v1/verify-email",
		"AUTH_RESET_URL":  public + "/v1/password/reset",
	}))
	s.authJWKS = s.auth.URL + "/.well-known/jwks.json"
	s.auth.Env["AUTH_JWKS_URL"] = s.authJWKS
	jwks := map[string]string{"AUTH_JWKS_URL": s.authJWKS, "AUTH_JWKS_REFETCH_INTERVAL": "1s"}
	s.inventoryEnv = with(jwks, map[string]string{"DATABASE_URL": pgtest.URL(t), "INVENTORY_SWEEP_INTERVAL": "500ms", "DATABASE_MAX_CONNS": "30"})
	s.ordersEnv = with(jwks, mail, map[string]string{"DATABASE_URL": pgtest.URL(t), "ORDERS_ORDER_URL": public + "/v1/orders", "DATABASE_MAX_CONNS": "30"})
	s.inventory = newProc(t, "inventory", s.inventoryEnv)
	s.orders = newProc(t, "orders", s.ordersEnv)
	s.pay = newProc(t, "payment", map[string]string{
		"DATABASE_URL":               pgtest.URL(t),
		"DATABASE_MAX_CONNS":         "30",
		"PAYMENT_PROCESSOR_URL":      s.sandbox.URL,
		"PAYMENT_PROCESSOR_API_KEY":  "sk_test_shop",
		"PAYMENT_PROCESSOR_TIMEOUT":  "1s",
		"PAYMENT_FINGERPRINT_KEY":    "aggregator-test-fingerprint-key-0123456789",
		"PAYMENT_IDEMPOTENCY_LEASE":  "4s",
		"PAYMENT_RECONCILE_INTERVAL": "200ms",
	})
	// auth first: the others fetch its keys.
	s.auth.Start(t)
	var wg sync.WaitGroup
	for _, p := range []*proc{s.inventory, s.orders, s.pay} {
		wg.Go(func() { p.Start(t) })
	}
	wg.Wait()
	for _, p := range []*proc{s.auth, s.inventory, s.orders, s.pay} {
		register(t, s.consul, p.Name, p.Name+"-1", p.Addr)
	}
	return s
}

// aggregator is an aggregator run in-process.
type aggregator = servicetest.Service

// aggregatorEnv is the configuration of an aggregator in front of s,
// with overrides.
func (s *stack) aggregatorEnv(port int, overrides map[string]string) map[string]string {
	env := map[string]string{
		"HTTP_ADDR":                       fmt.Sprintf("127.0.0.1:%d", port),
		"HTTP_SHUTDOWN_TIMEOUT":           "2s",
		"AGGREGATOR_AUTH_URL":             s.auth.URL,
		"AGGREGATOR_INVENTORY_URL":        s.inventory.URL,
		"AGGREGATOR_ORDERS_URL":           s.orders.URL,
		"AGGREGATOR_PAYMENT_URL":          s.pay.URL,
		"AUTH_JWKS_URL":                   s.authJWKS,
		"AUTH_JWKS_REFETCH_INTERVAL":      "1s",
		"AGGREGATOR_RATE_LIMIT":           "10000",
		"AGGREGATOR_RATE_BURST":           "10000",
		"AGGREGATOR_MAX_IN_FLIGHT":        "512",
		"AGGREGATOR_CALL_TIMEOUT":         "10s",
		"AGGREGATOR_PAYMENT_CALL_TIMEOUT": "10s",
		"AGGREGATOR_REQUEST_BUDGET":       "20s",
		"AGGREGATOR_CHECKOUT_BUDGET":      "25s",
		"AGGREGATOR_RECOVERY_AGE":         "26s",
		"AGGREGATOR_RECOVERY_INTERVAL":    "1h",
		// Reconciliation passes run when a test asks (POST
		// /internal/reconcile), not on their own in the middle of it.
		"AGGREGATOR_RECONCILE_INTERVAL": "1h",
	}
	for k, v := range overrides {
		env[k] = v
	}
	return env
}

// startAggregator runs an aggregator in-process in front of s until the
// test ends. port 0 takes a free port.
func (s *stack) startAggregator(t *testing.T, port int, overrides map[string]string) *aggregator {
	t.Helper()
	if port == 0 {
		port = porttest.Free(t)
	}
	return s.startAggregatorEnv(t, port, s.aggregatorEnv(port, overrides))
}

// startAggregatorEnv runs an aggregator with env on port until the test
// ends. Its lines stay out of the test's output but for the last ones,
// printed when the test fails.
func (s *stack) startAggregatorEnv(t *testing.T, port int, env map[string]string) *aggregator {
	t.Helper()
	env["HTTP_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
	logs := &servicetest.Logs{}
	return servicetest.Start(t, servicetest.Config{
		Name: "aggregator", Run: run, Env: env, Logs: logs, Level: "debug", Tail: 80, Ready: 20 * time.Second,
		AfterStop: func() { checkNoCards(t, "aggregator", logs.String()) },
	})
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linkRE finds a verification link in an email: the page, with the token
// in the fragment.
var linkRE = regexp.MustCompile(`https?://\S+/v1/verify-email#token=[A-Za-z0-9_-]+`)

// verificationLink waits for the verification email to address and
// returns its link.
func (s *stack) verificationLink(t *testing.T, address string) string {
	t.Helper()
	var link string
	eventually(t, 20*time.Second, "verification email to "+address, func() error {
		for _, m := range s.sink.Messages(mailsink.Filter{To: address}) {
			if l := linkRE.FindString(m.Message.TextPart + m.Message.HTMLPart); l != "" {
				link = l
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	return link
}

// chargeCounts reads what the sandbox processor really charged.
type chargeCounts struct {
	Charges            int              `json:"charges"`
	ChargesByReference map[string]int   `json:"charges_by_reference"`
	Refunds            int              `json:"refunds"`
	RefundedByCharge   map[string]int64 `json:"refunded_by_charge"`
}

func (s *stack) counts(t *testing.T) chargeCounts {
	t.Helper()
	resp, err := http.Get(s.sandbox.URL + "/v1/test/charge-counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c chargeCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// internalGet reads a service's internal endpoint directly, as only the
// tests do (to check what the aggregator did).
func internalGet(t *testing.T, url string, dst any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if dst != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// gate sits between the aggregator and a service and holds the requests
// that match a rule until the test lets them go (forwarded, as if the
// network had been slow, or dropped): a fault injector, like toxiproxy,
// not a fake — the service behind it is the real one.
type gate struct {
	target string
	srv    *httptest.Server
	client *http.Client

	mu    sync.Mutex
	rules []*hold
}

// hold is a rule of a gate: a matching request is held until release.
type hold struct {
	method, path, body string
	arrived            chan struct{}
	release            chan bool // true: forward; false: drop
	once               sync.Once
}

func newGate(t *testing.T, target string) *gate {
	g := &gate{target: target, client: &http.Client{Timeout: 30 * time.Second}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		g.mu.Lock()
		for _, h := range g.rules {
			select {
			case h.release <- false:
			default:
			}
		}
		g.mu.Unlock()
		g.srv.CloseClientConnections()
		g.srv.Close()
	})
	return g
}

// holdNext makes the gate hold the next request with method, a path
// matching path (a regexp) and a body containing body.
func (g *gate) holdNext(method, path, body string) *hold {
	h := &hold{method: method, path: path, body: body, arrived: make(chan struct{}), release: make(chan bool, 1)}
	g.mu.Lock()
	g.rules = append(g.rules, h)
	g.mu.Unlock()
	return h
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	var held *hold
	for i, h := range g.rules {
		if h.method == r.Method && regexp.MustCompile(h.path).MatchString(r.URL.Path) && bytes.Contains(body, []byte(h.body)) {
			held = h
			g.rules = append(g.rules[:i], g.rules[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	if held != nil {
		held.once.Do(func() { close(held.arrived) })
		if forward := <-held.release; !forward {
			// Dropped: the caller sees its connection cut.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
			return
		}
	}
	// Forwarded on a context of its own: a held request goes on even when
	// its caller has died meanwhile.
	out, _ := http.NewRequestWithContext(context.Background(), r.Method, g.target+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	resp, err := g.client.Do(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// problem is a problem+json body.
type problem = httpx.Problem

// checkNoCards fails the test when a log holds a card number the tests
// send: cards cross the aggregator and must never be written down.
func checkNoCards(t *testing.T, name, logs string) {
	t.Helper()
	for _, n := range []string{cardOK, cardDeclined, cardSlow, "4242424242424241"} {
		if strings.Contains(logs, n) {
			t.Errorf("%s logged a card number (%s…)", name, n[:6])
		}
	}
}
