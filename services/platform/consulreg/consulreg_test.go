package consulreg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/freeport"
	"github.com/hashicorp/consul/sdk/testutil"
	"github.com/hashicorp/go-hclog"
)

func TestRegisterLifecycle(t *testing.T) {
	t.Parallel()
	srv, client := startConsul(t, nil)

	var readyStatus atomic.Int32
	readyStatus.Store(http.StatusOK)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health/ready":
			w.WriteHeader(int(readyStatus.Load()))
		case "/health/live":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(svc.Close)
	port := svc.Listener.Addr().(*net.TCPAddr).Port

	log, _ := testLogger(t)
	reg, err := Register(t.Context(), Config{
		HTTPAddr:      srv.HTTPAddr,
		Name:          "orders",
		Address:       "127.0.0.1",
		Port:          port,
		Tags:          []string{"v1", "outside-nomad"},
		CheckInterval: time.Second,
		CheckTimeout:  time.Second,
	}, log)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	host, _ := os.Hostname()
	if got, want := reg.ID(), fmt.Sprintf("orders-%s-%d", host, port); got != want {
		t.Errorf("ID: got %q, want %q", got, want)
	}

	type catalogEntry struct {
		ID, Address string
		Port        int
		Tags        []string
	}
	waitFor(t, "orders in the catalog", func() error {
		entries, _, err := client.Catalog().Service("orders", "", nil)
		if err != nil {
			return err
		}
		var got []catalogEntry
		for _, e := range entries {
			got = append(got, catalogEntry{e.ServiceID, e.ServiceAddress, e.ServicePort, e.ServiceTags})
		}
		want := []catalogEntry{{reg.ID(), "127.0.0.1", port, []string{"v1", "outside-nomad"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("catalog mismatch (-want +got):\n%s", diff)
		}
		return nil
	})

	readyID, liveID := "service:"+reg.ID()+":ready", "service:"+reg.ID()+":live"
	waitChecks(t, client, map[string]string{readyID: api.HealthPassing, liveID: api.HealthPassing})
	checks, err := client.Agent().Checks()
	if err != nil {
		t.Fatalf("agent checks: %v", err)
	}
	for _, c := range checks {
		if c.ServiceID != reg.ID() {
			continue
		}
		want := map[string]string{readyID: svc.URL + "/health/ready", liveID: svc.URL + "/health/live"}[c.CheckID]
		// Consul does not return check URLs; the output of a run names it.
		if !strings.Contains(c.Output, want) {
			t.Errorf("check %s output: got %q, want it to name %s", c.CheckID, c.Output, want)
		}
	}

	readyStatus.Store(http.StatusServiceUnavailable)
	waitChecks(t, client, map[string]string{readyID: api.HealthCritical, liveID: api.HealthPassing})
	if passing, _, err := client.Health().Service("orders", "", true, nil); err != nil || len(passing) != 0 {
		t.Errorf("passing orders instances while not ready: got %d (err %v), want 0", len(passing), err)
	}

	if err := reg.Deregister(t.Context()); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatalf("agent services: %v", err)
	}
	if _, ok := services[reg.ID()]; ok {
		t.Errorf("agent services after Deregister: got %s, want it gone", reg.ID())
	}
	waitFor(t, "orders gone from the catalog", func() error {
		entries, _, err := client.Catalog().Service("orders", "", nil)
		if err != nil {
			return err
		}
		if len(entries) != 0 {
			return fmt.Errorf("got %d catalog entries, want 0", len(entries))
		}
		return nil
	})
	if err := reg.Deregister(t.Context()); err != nil {
		t.Errorf("second Deregister: got %v, want nil", err)
	}
}

func TestRegisterWaitsForAgent(t *testing.T) {
	t.Parallel()
	httpPort := freeport.GetOne(t)
	log, logs := testLogger(t)

	type result struct {
		reg *Registration
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() {
		reg, err := Register(ctx, Config{
			HTTPAddr: "127.0.0.1:" + strconv.Itoa(httpPort),
			Name:     "payment",
			ID:       "payment-1",
			Port:     9100,
		}, log)
		done <- result{reg, err}
	}()

	// Start the agent only once a registration attempt has failed.
	waitFor(t, "a failed attempt", func() error {
		if !strings.Contains(logs.String(), "consul agent not ready, retrying") {
			return errors.New("no retry logged yet")
		}
		return nil
	})
	_, client := startConsul(t, func(c *testutil.TestServerConfig) { c.Ports.HTTP = httpPort })

	res := <-done
	if res.err != nil {
		t.Fatalf("Register: got error %v, want success once the agent is up", res.err)
	}
	svc, _, err := client.Agent().Service("payment-1", nil)
	if err != nil {
		t.Fatalf("agent service payment-1: %v", err)
	}
	if svc.Service != "payment" || svc.Port != 9100 {
		t.Errorf("registered service: got %s:%d, want payment:9100", svc.Service, svc.Port)
	}
}

func TestRegisterStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	// Nothing listens on this port.
	addr := "127.0.0.1:" + strconv.Itoa(freeport.GetOne(t))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	reg, err := Register(ctx, Config{HTTPAddr: addr, Name: "orders", Port: 8080}, hclog.NewNullLogger())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Register: got %v, %v, want context.DeadlineExceeded", reg, err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Register error: got %q, want it to name the last failure (connection refused)", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Register returned after %v, want soon after the 300ms deadline", took)
	}
}

func TestConfigService(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("hostname: %v", err)
	}
	type checkView struct {
		CheckID, HTTP, Interval, Timeout, Reap string
	}
	type view struct {
		ID, Address string
		Port        int
		Checks      []checkView
	}
	tests := []struct {
		name string
		cfg  Config
		want view
	}{
		{
			name: "defaults",
			cfg:  Config{Name: "orders", Port: 8080},
			want: view{ID: "orders-" + host + "-8080", Port: 8080, Checks: []checkView{
				{"service:orders-" + host + "-8080:ready", "http://127.0.0.1:8080/health/ready", "5s", "2s", ""},
				{"service:orders-" + host + "-8080:live", "http://127.0.0.1:8080/health/live", "5s", "2s", "1m0s"},
			}},
		},
		{
			name: "explicit",
			cfg: Config{Name: "orders", ID: "o1", Address: "::1", Port: 8080, LiveURL: "http://x/live",
				CheckInterval: 10 * time.Second, CheckTimeout: time.Second, DeregisterCriticalAfter: 5 * time.Minute},
			want: view{ID: "o1", Address: "::1", Port: 8080, Checks: []checkView{
				{"service:o1:ready", "http://[::1]:8080/health/ready", "10s", "1s", ""},
				{"service:o1:live", "http://x/live", "10s", "1s", "5m0s"},
			}},
		},
	}
	for _, tt := range tests {
		svc, err := tt.cfg.service()
		if err != nil {
			t.Errorf("%s: service(): %v", tt.name, err)
			continue
		}
		got := view{ID: svc.ID, Address: svc.Address, Port: svc.Port}
		for _, c := range svc.Checks {
			got.Checks = append(got.Checks, checkView{c.CheckID, c.HTTP, c.Interval, c.Timeout, c.DeregisterCriticalServiceAfter})
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: registration mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestRegisterRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{Port: 8080}, "service name"},
		{"name with a dot", Config{Name: "orders.v1", Port: 8080}, "service name"},
		{"upper case name", Config{Name: "Orders", Port: 8080}, "service name"},
		{"no port", Config{Name: "orders"}, "service port"},
		{"port too large", Config{Name: "orders", Port: 70000}, "service port"},
	}
	for _, tt := range tests {
		// The agent address is never dialled: validation fails first.
		tt.cfg.HTTPAddr = "127.0.0.1:1"
		_, err := Register(t.Context(), tt.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one about %q", tt.name, err, tt.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{errors.New("dial tcp 127.0.0.1:8500: connect: connection refused"), true},
		{fmt.Errorf("put: %w", api.StatusError{Code: 500}), true},
		{api.StatusError{Code: 503}, true},
		{api.StatusError{Code: 429}, true},
		{api.StatusError{Code: 400}, false},
		{api.StatusError{Code: 403}, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v): got %t, want %t", tt.err, got, tt.want)
		}
	}
}

// startConsul starts a real Consul agent (the consul binary on PATH),
// letting configure adjust its settings, and returns it with an API client
// once it has a leader and a healthy node.
func startConsul(t *testing.T, configure func(*testutil.TestServerConfig)) (*testutil.TestServer, *api.Client) {
	t.Helper()
	srv, err := testutil.NewTestServerConfigT(t, func(c *testutil.TestServerConfig) {
		c.LogLevel = "warn"
		c.Connect = nil
		if configure != nil {
			configure(c)
		}
	})
	if err != nil {
		t.Fatalf("start consul agent (is consul on PATH?): %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	srv.WaitForSerfCheck(t)
	client, err := api.NewClient(&api.Config{Address: srv.HTTPAddr})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return srv, client
}

// waitChecks waits until each check ID in want has the given status in
// Consul's health endpoint.
func waitChecks(t *testing.T, client *api.Client, want map[string]string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("checks %v", want), func() error {
		checks, _, err := client.Health().Checks("orders", nil)
		if err != nil {
			return err
		}
		got := make(map[string]string)
		for _, c := range checks {
			got[c.CheckID] = c.Status
		}
		if !cmp.Equal(want, got) {
			return fmt.Errorf("got %v, want %v", got, want)
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
		time.Sleep(50 * time.Millisecond)
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
// fails.
func testLogger(t *testing.T) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Trace, Output: buf}), buf
}
