package servicetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/server"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// TestMain runs the fake service instead of the tests when the test binary
// is started as a Process.
func TestMain(m *testing.M) {
	if os.Getenv("SERVICETEST_FAKE") == "1" {
		if err := fake(context.Background(), logging.New("fake", os.Stdout, "debug"), os.LookupEnv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

// fake is a service's run: it serves GET /hello (its FAKE_GREETING) and
// GET /problem (a 404 problem), is ready FAKE_READY_AFTER after it starts,
// fails at start with FAKE_FAIL and returns FAKE_STOP_ERROR after a
// graceful stop.
func fake(ctx context.Context, log hclog.Logger, lookup func(string) (string, bool)) error {
	var cfg struct {
		Server     server.Config
		Greeting   string        `env:"FAKE_GREETING" default:"hello"`
		ReadyAfter time.Duration `env:"FAKE_READY_AFTER" default:"0s"`
		Fail       string        `env:"FAKE_FAIL"`
		StopError  string        `env:"FAKE_STOP_ERROR"`
	}
	if err := config.Load(&cfg, lookup); err != nil {
		return err
	}
	if cfg.Fail != "" {
		return errors.New(cfg.Fail)
	}
	started := time.Now()
	ready := server.Check{Name: "warm", Fn: func(context.Context) error {
		if time.Since(started) < cfg.ReadyAfter {
			return errors.New("warming up")
		}
		return nil
	}}
	mux := http.NewServeMux()
	mux.Handle("GET /hello", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return httpx.WriteJSON(w, http.StatusOK, map[string]string{"greeting": cfg.Greeting, "auth": r.Header.Get("Authorization"), "x": r.Header.Get("X-Test")})
	}))
	mux.Handle("GET /problem", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return apierr.Errorf(apierr.NotFound, "no such thing")
	}))
	log.Info("fake started", "greeting", cfg.Greeting)
	if err := server.Run(ctx, cfg.Server, mux, log, ready); err != nil {
		return err
	}
	if cfg.StopError != "" {
		return errors.New(cfg.StopError)
	}
	return nil
}

// TestStartStopStart: Start returns once the service is ready (not merely
// listening), its lines are in Logs, Stop returns what run returned, and a
// second Start on a changed environment serves on the same port.
func TestStartStopStart(t *testing.T) {
	t.Parallel()
	s := servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake, Env: map[string]string{"FAKE_READY_AFTER": "300ms", "FAKE_STOP_ERROR": "drained badly"}})
	var got map[string]string
	s.Do(t, "GET", "/hello", servicetest.Request{Token: "tok", Header: map[string]string{"X-Test": "x"}}).Want(t, http.StatusOK).DecodeStrict(t, &got)
	if got["greeting"] != "hello" || got["auth"] != "Bearer tok" || got["x"] != "x" {
		t.Errorf("got %v, want the greeting, the bearer token and the header", got)
	}
	if !strings.Contains(s.Logs.String(), `"@message":"fake started"`) {
		t.Errorf("the start line is not in the logs:\n%s", s.Logs.String())
	}
	if err := s.Stop(); err == nil || err.Error() != "drained badly" {
		t.Fatalf("Stop: got %v, want run's error", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("a second Stop: got %v, want nil", err)
	}
	if _, err := s.Send(t.Context(), "GET", "/hello", servicetest.Request{}); err == nil {
		t.Error("the stopped service still answers")
	}
	s.Env["FAKE_GREETING"] = "again"
	delete(s.Env, "FAKE_STOP_ERROR")
	s.Start(t)
	s.Do(t, "GET", s.URL+"/hello", servicetest.Request{}).Want(t, http.StatusOK).Decode(t, &got)
	if got["greeting"] != "again" {
		t.Errorf("got greeting %q after a restart, want the changed environment's", got["greeting"])
	}
}

// TestDatabase: migration sets give the service a fresh database, and DB a
// pool on it.
func TestDatabase(t *testing.T) {
	t.Parallel()
	s := servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake}, outbox.Migrations)
	if !strings.HasPrefix(s.Env["DATABASE_URL"], "postgres://") {
		t.Fatalf("got DATABASE_URL %q, want a fresh database", s.Env["DATABASE_URL"])
	}
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM outbox_messages`).Scan(&n); err != nil || n != 0 {
		t.Errorf("got %d outbox messages, %v; want an empty migrated table", n, err)
	}
}

// TestFailures: what the harness must fail a test for.
func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t testing.TB)
		want string
	}{
		{"run ends while starting", func(t testing.TB) {
			servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake, Env: map[string]string{"FAKE_FAIL": "no config"}})
		}, "fake stopped while starting: no config"},
		{"never ready", func(t testing.TB) {
			servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake, Env: map[string]string{"FAKE_READY_AFTER": "1h"}, Ready: 300 * time.Millisecond})
		}, "fake not ready after 300ms"},
		{"stop is not graceful", func(t testing.TB) {
			servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake, Env: map[string]string{"FAKE_STOP_ERROR": "drained badly"}})
		}, "fake: run returned drained badly, want nil after a graceful stop"},
		{"another status", func(t testing.TB) {
			servicetest.Response{Status: 404, Body: []byte("{}")}.Want(t, 200)
		}, "got status 404, want 200"},
		{"a field the type lacks", func(t testing.TB) {
			var v struct{ A int }
			servicetest.Response{Body: []byte(`{"A":1,"B":2}`)}.DecodeStrict(t, &v)
		}, `unknown field "B"`},
		{"not problem+json", func(t testing.TB) {
			servicetest.Response{Status: 404, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`)}.Problem(t)
		}, "got Content-Type"},
		{"an incomplete problem", func(t testing.TB) {
			servicetest.Response{Status: 404, Header: problemJSON(), Body: []byte(`{"type":"x","title":"Not found","status":404}`)}.Problem(t)
		}, "incomplete problem"},
		{"another problem", func(t testing.TB) {
			s := servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake})
			s.Do(t, "GET", "/problem", servicetest.Request{}).WantProblem(t, http.StatusNotFound, "conflict")
		}, "want \"" + httpx.ProblemTypeBase + "conflict\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := run(t, tt.fn)
			if !strings.Contains(f, tt.want) {
				t.Errorf("got failures %q, want one with %q", f, tt.want)
			}
		})
	}
}

// TestProblem: a real problem passes the checks TestFailures sees fail.
func TestProblem(t *testing.T) {
	t.Parallel()
	s := servicetest.Start(t, servicetest.Config{Name: "fake", Run: fake})
	if p := s.Do(t, "GET", "/problem", servicetest.Request{}).WantProblem(t, http.StatusNotFound, "not-found"); p.Detail != "no such thing" {
		t.Errorf("got detail %q, want the error's", p.Detail)
	}
}

func problemJSON() http.Header { return http.Header{"Content-Type": {httpx.ProblemContentType}} }

// TestIssuer: a verifier that fetches the issuer's JWKS accepts its tokens
// and refuses another issuer's.
func TestIssuer(t *testing.T) {
	t.Parallel()
	iss, other := servicetest.NewIssuer(t), servicetest.NewIssuer(t)
	var cfg authn.Config
	if err := config.Load(&cfg, config.MapLookup(map[string]string{"AUTH_JWKS_URL": iss.JWKSURL})); err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(cfg, http.DefaultClient, logging.ForTest(t))
	u := iss.User(t, authn.RoleSeller, true)
	c, err := v.Verify(t.Context(), u.Token)
	if err != nil {
		t.Fatalf("verify the issuer's token: %v", err)
	}
	if c.Subject != u.ID.String() || c.Email != u.Email || c.Role != authn.RoleSeller || !c.EmailVerified {
		t.Errorf("got claims %+v, want the user's (%+v)", c, u)
	}
	if _, err := v.Verify(t.Context(), other.User(t, authn.RoleBuyer, true).Token); err == nil {
		t.Error("a token of another issuer's key was accepted")
	}
}

// TestProcess: a binary runs as a process, its output is in Logs, and it
// starts again after a kill.
func TestProcess(t *testing.T) {
	t.Parallel()
	p := servicetest.NewProcess(t, servicetest.Config{Name: "fake", Binary: os.Args[0], Env: map[string]string{"SERVICETEST_FAKE": "1", "FAKE_GREETING": "from a process"}})
	get := func() (string, error) {
		resp, err := http.Get(p.URL + "/hello")
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.Status, nil
	}
	p.Start(t)
	if status, err := get(); err != nil || status != "200 OK" {
		t.Fatalf("got %s, %v; want 200", status, err)
	}
	p.Kill()
	if _, err := get(); err == nil {
		t.Fatal("the killed process still answers")
	}
	p.Start(t)
	if status, err := get(); err != nil || status != "200 OK" {
		t.Fatalf("after a restart: got %s, %v; want 200", status, err)
	}
	if got := strings.Count(p.Logs.String(), `"greeting":"from a process"`); got != 2 {
		t.Errorf("got %d start lines in the process's logs, want 2:\n%s", got, p.Logs.Tail(20))
	}
}

func TestLogsTail(t *testing.T) {
	t.Parallel()
	var l servicetest.Logs
	fmt.Fprint(&l, "a\nb\nc\n")
	if got := l.Tail(2); got != "b\nc" {
		t.Errorf("got %q, want the last two lines", got)
	}
}

// run runs fn with a testing.TB that records its failures instead of
// failing t, runs its cleanups when fn ends, and returns the failures.
func run(t *testing.T, fn func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.cleanup()
		fn(r)
	}()
	<-done
	return strings.Join(r.failures, "\n")
}

// recorder is a testing.TB whose failures are recorded; Fatal ends its
// goroutine as testing's does.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
