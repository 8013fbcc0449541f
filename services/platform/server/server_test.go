package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/server"
)

func testConfig() server.Config {
	return server.Config{
		Addr:              "127.0.0.1:0",
		ReadHeaderTimeout: time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    8192,
		ShutdownTimeout:   5 * time.Second,
		ReadyCheckTimeout: 500 * time.Millisecond,
	}
}

// TestSIGTERMDrains is not parallel: it signals the whole test process.
func TestSIGTERMDrains(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	srv := server.New(testConfig(), mux, logging.ForTest(t))
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- srv.Serve(context.Background()) }()

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr.String() + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	<-entered

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the drain has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 5s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v before the request in flight completed", err)
	default:
	}

	close(release)
	if r := <-slow; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: got (%q, %v), want (finished, nil)", r.body, r.err)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	dbDown := errors.New("dial 127.0.0.1:5432: connection refused")
	var failing atomic.Bool
	check := server.Check{Name: "db", Fn: func(ctx context.Context) error {
		if failing.Load() {
			return dbDown
		}
		return nil
	}}
	srv := server.New(testConfig(), http.NotFoundHandler(), logging.ForTest(t), check)
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Serve(ctx) }()
	base := "http://" + addr.String()

	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if got := get("/health/live").StatusCode; got != 200 {
		t.Errorf("live: got %d, want 200", got)
	}
	if got := get("/health/ready").StatusCode; got != 200 {
		t.Errorf("ready with a healthy db: got %d, want 200", got)
	}
	failing.Store(true)
	resp := get("/health/ready")
	if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != httpx.ProblemContentType {
		t.Errorf("ready with the db down: got %d %s, want 503 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := get("/health/live").StatusCode; got != 200 {
		t.Errorf("live with the db down: got %d, want 200 (liveness must not depend on peers)", got)
	}
	if got := get("/elsewhere").StatusCode; got != 404 {
		t.Errorf("unknown path: got %d, want the handler's 404", got)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Serve returned %v after ctx cancel, want nil", err)
	}
}

func TestListenErrorIsReturned(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig()
	cfg.Addr = l.Addr().String()
	if err := server.Run(context.Background(), cfg, http.NotFoundHandler(), logging.ForTest(t)); err == nil {
		t.Fatal("got nil, want an error for an address in use")
	}
}

// TestWorkersStopAfterTheDrain: background work runs while the server
// serves, is stopped only once requests in flight are done, and Serve
// returns after it has returned.
func TestWorkersStopAfterTheDrain(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var workerStopped, requestDone atomic.Bool
	var stoppedBeforeRequest atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		requestDone.Store(true)
	})
	srv := server.New(testConfig(), mux, logging.ForTest(t))
	srv.Go(func(ctx context.Context) {
		<-ctx.Done()
		if !requestDone.Load() {
			stoppedBeforeRequest.Store(true)
		}
		time.Sleep(50 * time.Millisecond) // a worker finishing its last item
		workerStopped.Store(true)
	})
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Serve(ctx) }()
	go func() {
		if resp, err := http.Get("http://" + addr.String() + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-ran; err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if !workerStopped.Load() {
		t.Error("Serve returned before its worker did")
	}
	if stoppedBeforeRequest.Load() {
		t.Error("the worker was stopped while a request was still in flight")
	}
}

// TestProfiles: pprof is off by default, served only on its own loopback
// listener when HTTP_PPROF_ADDR is set, never on the API's port (which the
// edge routes), and a non-loopback address is refused.
func TestProfiles(t *testing.T) {
	t.Parallel()
	get := func(url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	serve := func(cfg server.Config) (*server.Server, func()) {
		t.Helper()
		srv := server.New(cfg, http.NotFoundHandler(), logging.ForTest(t))
		if _, err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- srv.Serve(ctx) }()
		return srv, func() {
			cancel()
			if err := <-ran; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	}

	off, stop := serve(testConfig())
	if off.PprofAddr() != nil {
		t.Errorf("profiles by default: got a listener at %v, want none", off.PprofAddr())
	}
	stop()

	cfg := testConfig()
	cfg.PprofAddr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a loopback profiles address: %v", err)
	}
	on, stop := serve(cfg)
	defer stop()
	api, err := on.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if got := get("http://" + on.PprofAddr().String() + "/debug/pprof/cmdline"); got != 200 {
		t.Errorf("profiles' listener: got %d, want 200", got)
	}
	if got := get("http://" + api.String() + "/debug/pprof/cmdline"); got != 404 {
		t.Errorf("the API's port: got %d for /debug/pprof, want the handler's 404", got)
	}

	for _, addr := range []string{"0.0.0.0:6060", "10.0.0.5:6060", ":6060", "localhost"} {
		bad := testConfig()
		bad.PprofAddr = addr
		if err := bad.Validate(); err == nil {
			t.Errorf("HTTP_PPROF_ADDR %q: got no error, want a refusal (loopback only)", addr)
		}
	}
}
