// Package server runs a service's HTTP server the one way all services do:
// hardened timeouts, the httpx middleware, /health/live and /health/ready,
// Prometheus metrics (a registry of the server's own, served at /metrics on
// the health listener), and a graceful drain on SIGTERM or SIGINT, so that
// Nomad can stop or move an instance without cutting a request.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/metrics"
)

// Config is the HTTP server's part of a service's configuration.
type Config struct {
	Addr              string        `env:"HTTP_ADDR" default:"127.0.0.1:8080"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" default:"5s"`
	ReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" default:"15s"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" default:"30s"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" default:"120s"`
	MaxHeaderBytes    int           `env:"HTTP_MAX_HEADER_BYTES" default:"65536"`
	// ShutdownTimeout bounds the drain; requests still running after it are
	// cut. Keep it under Nomad's kill_timeout.
	ShutdownTimeout time.Duration `env:"HTTP_SHUTDOWN_TIMEOUT" default:"20s"`
	// ReadyCheckTimeout bounds each readiness check.
	ReadyCheckTimeout time.Duration `env:"HTTP_READY_CHECK_TIMEOUT" default:"2s"`
	// PprofAddr, when set, serves net/http/pprof on a listener of its own
	// (never the API's port, so the edge can never route it), to explain a
	// slow path. Off by default; loopback addresses only.
	PprofAddr string `env:"HTTP_PPROF_ADDR" default:""`
	// HealthAddr, when set, serves /health/live, /health/ready, /metrics
	// and the service's own reports under /internal/health/ (and nothing
	// else) in plain HTTP on a listener of its own: Consul's checks and
	// Prometheus reach a service whose API is in the mesh (mutual TLS)
	// there. Unset, there is no /metrics at all: the API's port, which the
	// edge routes, never serves it.
	HealthAddr string `env:"HTTP_HEALTH_ADDR" default:""`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.ReadHeaderTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("HTTP_READ_HEADER_TIMEOUT and HTTP_SHUTDOWN_TIMEOUT must be positive")
	}
	if c.MaxHeaderBytes < 4096 {
		return errors.New("HTTP_MAX_HEADER_BYTES must be at least 4096")
	}
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("HTTP_PPROF_ADDR %q must be a loopback address and port, like 127.0.0.1:6060: profiles are for an operator on the host", c.PprofAddr)
		}
	}
	return nil
}

// Check is one readiness check (a database ping, …): ready answers 503
// while any check fails.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server is a service's HTTP server. Use Run, or New, Listen and Serve when
// the caller needs the bound address first (tests, port 0).
type Server struct {
	cfg      Config
	log      hclog.Logger
	srv      *http.Server
	checks   []Check
	draining atomic.Bool
	ln       net.Listener
	pprof    *http.Server // nil unless cfg.PprofAddr is set
	pprofLn  net.Listener
	health   *http.Server // nil unless cfg.HealthAddr is set
	healthLn net.Listener
	mesh     *mesh.Mesh
	mux      *http.ServeMux
	baseLog  hclog.Logger
	registry *prometheus.Registry
	requests *metrics.HTTP
	mu       sync.Mutex
	workers  []func(context.Context)
}

// New builds a server for handler with the given readiness checks.
func New(cfg Config, handler http.Handler, log hclog.Logger, checks ...Check) *Server {
	s := &Server{cfg: cfg, log: log.Named("http"), checks: checks, baseLog: log, registry: metrics.NewRegistry()}
	s.requests = metrics.NewHTTP(s.registry)
	// The API's listener counts its requests by route; the probes it
	// answers here count under their own fixed names. The health
	// listener's requests (probes, scrapes) are not counted.
	mux := http.NewServeMux()
	mux.Handle("GET /health/live", named("/health/live", s.live))
	mux.Handle("GET /health/ready", named("/health/ready", s.ready))
	mux.Handle("/", handler)
	s.mux = mux
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.requests.Middleware(httpx.Middleware(log, mux)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	if cfg.HealthAddr != "" {
		hm := http.NewServeMux()
		hm.HandleFunc("GET /health/live", s.live)
		hm.HandleFunc("GET /health/ready", s.ready)
		// A service's own health reports (the aggregator's flagged orders)
		// are checks too.
		hm.Handle("GET /internal/health/", handler)
		hm.Handle("GET /metrics", metrics.Handler(s.registry, log))
		s.health = &http.Server{Handler: httpx.Middleware(log, hm), ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout}
	}
	if cfg.PprofAddr != "" {
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.pprof = &http.Server{Handler: pm, ReadHeaderTimeout: cfg.ReadHeaderTimeout}
	}
	return s
}

// Run serves handler on cfg.Addr until ctx is done or the process gets
// SIGTERM or SIGINT, then drains: the listener closes at once (new
// connections are refused), requests in flight complete, and Run returns
// nil. It returns an error only when the server cannot start or the drain
// times out.
func Run(ctx context.Context, cfg Config, handler http.Handler, log hclog.Logger, checks ...Check) error {
	s := New(cfg, handler, log, checks...)
	if _, err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// UseMesh puts the API listener in the service mesh: it serves mutual TLS
// with m's certificate and lets in only the callers Consul's intentions
// allow (checked again on every request). A nil m leaves plain HTTP. Call
// it before Listen; the health endpoints stay plain on HTTP_HEALTH_ADDR.
func (s *Server) UseMesh(m *mesh.Mesh) {
	if m == nil {
		return
	}
	s.mesh = m
	s.srv.Handler = s.requests.Middleware(httpx.Middleware(s.baseLog, m.Authorize(s.mux)))
	s.srv.ConnContext = m.ConnContext
}

// Registry is the server's own metrics registry, served at /metrics on
// HTTP_HEALTH_ADDR: a service registers its collectors here.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Go adds background work (an outbox relay, a sweeper, a reconciler) that
// Serve starts with the server and stops after the drain: requests in flight
// finish before the work they may rely on is told to stop. work must return
// once its context is done; Serve waits for it.
func (s *Server) Go(work func(ctx context.Context)) {
	s.workers = append(s.workers, work)
}

// Listen binds the configured address and returns the bound one.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr(), nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	if s.mesh != nil {
		ln = tls.NewListener(ln, s.mesh.ServerTLSConfig())
	}
	if s.health != nil {
		hln, err := net.Listen("tcp", s.cfg.HealthAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s (health): %w", s.cfg.HealthAddr, err)
		}
		s.healthLn = hln
	}
	if s.pprof != nil {
		pln, err := net.Listen("tcp", s.cfg.PprofAddr)
		if err != nil {
			ln.Close()
			if s.healthLn != nil {
				s.healthLn.Close()
			}
			return nil, fmt.Errorf("listen %s (pprof): %w", s.cfg.PprofAddr, err)
		}
		s.pprofLn = pln
	}
	s.ln = ln
	return ln.Addr(), nil
}

// PprofAddr is the bound address of the profiles' listener, or nil when
// HTTP_PPROF_ADDR is not set.
func (s *Server) PprofAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pprofLn == nil {
		return nil
	}
	return s.pprofLn.Addr()
}

// HealthAddr is the bound address of the health listener, or nil when
// HTTP_HEALTH_ADDR is not set or Listen has not run.
func (s *Server) HealthAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.healthLn == nil {
		return nil
	}
	return s.healthLn.Addr()
}

// Serve serves until ctx is done or a termination signal arrives, then
// drains as Run describes.
func (s *Server) Serve(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		stopWork()
		wg.Wait()
	}()
	for _, work := range s.workers {
		wg.Go(func() { work(workCtx) })
	}

	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("listening", "addr", s.ln.Addr().String(), "mesh", s.mesh != nil)
	if s.health != nil {
		go func() { _ = s.health.Serve(s.healthLn) }()
		defer s.health.Close()
		s.log.Info("health", "addr", s.healthLn.Addr().String())
	}
	if s.pprof != nil {
		go func() { _ = s.pprof.Serve(s.pprofLn) }()
		defer s.pprof.Close()
		s.log.Info("profiles", "addr", s.pprofLn.Addr().String())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("draining", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("drain: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// named serves h as the route name, for the metrics.
func named(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.SetRoute(r, name)
		h(w, r)
	})
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "live"})
}

// checkResult is one line of the ready report.
type checkResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpx.Error(w, r, apierr.Errorf(apierr.Unavailable, "shutting down"))
		return
	}
	results := make([]checkResult, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyCheckTimeout)
			defer cancel()
			results[i] = checkResult{Name: c.Name, OK: true}
			if err := c.Fn(ctx); err != nil {
				results[i] = checkResult{Name: c.Name, Error: err.Error()}
			}
		}()
	}
	wg.Wait()
	var failed []string
	for _, res := range results {
		if !res.OK {
			failed = append(failed, res.Name+": "+res.Error)
		}
	}
	if len(failed) > 0 {
		httpx.Error(w, r, apierr.Errorf(apierr.Unavailable, "not ready: %s", strings.Join(failed, "; ")))
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}
