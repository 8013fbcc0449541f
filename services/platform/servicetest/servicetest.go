// Package servicetest is the harness the tests of the services and of the
// aggregator share: it runs a module's run in-process (Start) or its
// binary as a process (NewProcess) on a free port, waits until
// /health/ready answers, captures what the service logs through t, stops
// it when the test ends, and gives the tests an HTTP client for it
// (Service.Do, Response), an issuer of access tokens whose keys a JWKS
// endpoint publishes as auth does (Issuer), and a mail sink standing in
// for Mailjet (Mail).
//
// It is for tests only: import it from _test.go files, never from a
// binary. Everything in it is parallel-safe: ports come from porttest,
// databases from pgtest, and nothing reads or sets the process's
// environment. A package that uses it stops pgtest's server when its tests
// end:
//
//	func TestMain(m *testing.M) { servicetest.Main(m) }
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
)

// Run is a module's run function, the one its main calls: it serves until
// ctx ends and returns nil after a graceful stop.
type Run func(ctx context.Context, log hclog.Logger, lookupEnv func(string) (string, bool)) error

// Config says how to run a service.
type Config struct {
	// Name names the service in its log lines and in failures ("auth").
	Name string
	// Run is the module's run, for Start.
	Run Run
	// Binary is the path of the module's built binary, for NewProcess.
	Binary string
	// Env is the service's whole environment. HTTP_ADDR is set to a free
	// loopback port when it has none, HTTP_SHUTDOWN_TIMEOUT to 5s. The
	// Service keeps the map: a test may change it between Stop and Start.
	Env map[string]string
	// Logs receives every line the service logs; nil: a new one. Share one
	// to see a service's lines and its fakes' in one place.
	Logs *Logs
	// Level is the service's log level: "trace" when empty.
	Level string
	// Tail, when not 0, keeps the service's lines out of the test's output
	// (a whole shop logs too much to read) but for the last Tail of them,
	// printed when the test fails. A Process's lines are never logged
	// through t; its Tail is 60 when 0.
	Tail int
	// Ready bounds the wait for /health/ready: 15s when 0 (60s for a
	// Process, which may start beside many others).
	Ready time.Duration
	// AfterStop, when set, runs when the test ends, once the service has
	// stopped (its database is still open): for checks over everything it
	// wrote or logged.
	AfterStop func()
}

// Service is a service run in-process through its module's run, as main
// runs it.
type Service struct {
	Name string
	Addr string            // its HTTP_ADDR, 127.0.0.1:port
	URL  string            // http://127.0.0.1:port
	Env  map[string]string // what run reads
	Logs *Logs             // every line it logged
	// DB is a pool on the service's database, for the checks a client
	// cannot make; nil when Start was given no migration sets.
	DB *pgxpool.Pool
	// Client is the HTTP client of Do and Send, with room for many
	// concurrent requests. Stop closes its idle connections.
	Client *http.Client

	cfg Config

	mu  sync.Mutex
	cur *running
}

// running is one run of a service.
type running struct {
	cancel context.CancelFunc
	ended  chan struct{}
	err    error // what run returned, once ended is closed
}

// Start runs the service of cfg until the test ends, and waits until it is
// ready. With migration sets, the service has a database: a fresh one with
// the sets (pgtest.URL) unless cfg.Env has a DATABASE_URL already, and DB
// on it. When the test ends the service is stopped, run must return nil,
// then cfg.AfterStop runs.
func Start(t testing.TB, cfg Config, sets ...pgdb.MigrationSet) *Service {
	t.Helper()
	if cfg.Run == nil {
		t.Fatalf("servicetest: %s: Config.Run is nil", cfg.Name)
	}
	s := &Service{
		Name: cfg.Name,
		Env:  prepareEnv(t, cfg.Env),
		Logs: cfg.Logs,
		// Room for the concurrent tests' connections; the timeout only
		// bounds a hang.
		Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute},
		cfg:    cfg,
	}
	s.Addr = s.Env["HTTP_ADDR"]
	s.URL = "http://" + s.Addr
	if s.Logs == nil {
		s.Logs = &Logs{}
	}
	if len(sets) > 0 {
		if s.Env["DATABASE_URL"] == "" {
			s.Env["DATABASE_URL"] = pgtest.URL(t, sets...)
		}
		s.DB = openPool(t, s.Env["DATABASE_URL"])
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("%s: run returned %v, want nil after a graceful stop", s.Name, err)
		}
		s.Client.CloseIdleConnections()
		finish(t, s.Name, s.Logs, cfg.Tail, cfg.AfterStop)
	})
	s.Start(t)
	return s
}

// Start runs the service again after Stop, on the same port, environment
// and database, and waits until it is ready. t is the test its lines are
// logged through.
func (s *Service) Start(t testing.TB) {
	t.Helper()
	level := s.cfg.Level
	if level == "" {
		level = "trace"
	}
	var w io.Writer = s.Logs
	if s.cfg.Tail == 0 {
		w = io.MultiWriter(s.Logs, testWriter{t})
	}
	log := logging.New(s.Name, w, level)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, ended: make(chan struct{})}
	s.mu.Lock()
	if s.cur != nil {
		s.mu.Unlock()
		cancel()
		t.Fatalf("servicetest: %s is running already", s.Name)
	}
	s.cur = r
	s.mu.Unlock()
	go func() {
		r.err = s.cfg.Run(ctx, log, config.MapLookup(s.Env))
		close(r.ended)
	}()
	switch err := waitReady(s.Client, s.URL, orDefault(s.cfg.Ready, 15*time.Second), r.ended); {
	case errors.Is(err, errEnded):
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		t.Fatalf("%s stopped while starting: %v", s.Name, r.err)
	case err != nil:
		t.Fatalf("%s %v: %v", s.Name, err, s.Stop())
	}
}

// Stop stops the service and returns what run returned; nil when it is
// not running. A connection the client dialed but never sent a request on
// would keep the server's drain waiting (net/http counts it as busy): Stop
// closes them first, as a proxy in front of the service would.
func (s *Service) Stop() error {
	s.mu.Lock()
	r := s.cur
	s.cur = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	s.Client.CloseIdleConnections()
	r.cancel()
	<-r.ended
	return r.err
}

// Addr is a loopback address nothing listens on, for a server the test
// starts next (porttest: never a port the kernel may give a parallel
// test's client or httptest server).
func Addr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", porttest.Free(t))
}

// Main runs the tests of a package that starts services, then stops the
// PostgreSQL server their databases shared (pgtest.Main):
//
//	func TestMain(m *testing.M) { servicetest.Main(m) }
func Main(m *testing.M) { pgtest.Main(m) }

// Option adjusts a service's environment before it starts: a test's
// variation on its module's configuration.
type Option func(env map[string]string)

// WithEnv is the Option that sets k to v.
func WithEnv(k, v string) Option { return func(env map[string]string) { env[k] = v } }

// Merge returns one environment with every part's settings, a later
// part's winning.
func Merge(parts ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range parts {
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

// prepareEnv returns env (a new map when nil) with HTTP_ADDR and
// HTTP_SHUTDOWN_TIMEOUT set when it has none.
func prepareEnv(t testing.TB, env map[string]string) map[string]string {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env["HTTP_ADDR"] == "" {
		env["HTTP_ADDR"] = Addr(t)
	}
	if env["HTTP_SHUTDOWN_TIMEOUT"] == "" {
		env["HTTP_SHUTDOWN_TIMEOUT"] = "5s"
	}
	return env
}

// openPool opens a pool on url until the test ends, with room for a
// test's concurrent checks.
func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("servicetest: %v", err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("servicetest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// finish runs what follows a service's stop when the test ends.
func finish(t testing.TB, name string, logs *Logs, tail int, afterStop func()) {
	if afterStop != nil {
		afterStop()
	}
	if tail > 0 && t.Failed() {
		t.Logf("---- last lines of %s's log:\n%s", name, logs.Tail(tail))
	}
}

// errEnded is waitReady's answer when the service ended while starting.
var errEnded = errors.New("ended while starting")

// waitReady polls base's /health/ready until it answers 200, ended is
// closed, or within has passed.
func waitReady(c *http.Client, base string, within time.Duration, ended <-chan struct{}) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(base + "/health/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ended:
			return errEnded
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
