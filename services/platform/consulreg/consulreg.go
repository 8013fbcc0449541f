// Package consulreg registers a running service in its local Consul agent,
// with HTTP health checks, and removes it on shutdown.
//
// Under Nomad a job's service block does this, so the package exists only
// for services started outside Nomad (a developer's machine, a plain VM):
// their peers find them the same way, through Consul DNS, and only while
// their readiness check passes.
package consulreg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Config describes the service to register and its checks. Name and Port
// come from the service itself; the rest has defaults.
type Config struct {
	// HTTPAddr is the Consul agent's HTTP API, "host:port" or a URL.
	HTTPAddr string `env:"CONSUL_HTTP_ADDR" default:"127.0.0.1:8500"`
	// Name is the service name peers resolve, a DNS label such as "orders".
	Name string
	// ID identifies this instance on the agent. It defaults to
	// "<name>-<hostname>-<port>", unique per host and port.
	ID string `env:"CONSUL_SERVICE_ID"`
	// Address is where peers reach the service. Empty lets Consul use the
	// agent's node address.
	Address string `env:"CONSUL_SERVICE_ADDRESS"`
	// Port is the port the service listens on.
	Port int
	// Tags are attached to the service as they are (comma-separated in
	// the environment).
	Tags []string `env:"CONSUL_SERVICE_TAGS"`
	// ReadyURL is polled by the agent; the service receives traffic only
	// while it answers 2xx. It defaults to
	// "http://<Address or 127.0.0.1>:<Port>/health/ready".
	ReadyURL string `env:"CONSUL_CHECK_READY_URL"`
	// LiveURL is polled by the agent to tell a dead process from a busy or
	// unready one. It defaults to ReadyURL's host with "/health/live".
	LiveURL string `env:"CONSUL_CHECK_LIVE_URL"`
	// CheckInterval is how often the agent runs each check (at least 1s,
	// Consul's minimum).
	CheckInterval time.Duration `env:"CONSUL_CHECK_INTERVAL" default:"5s"`
	// CheckTimeout bounds one check request.
	CheckTimeout time.Duration `env:"CONSUL_CHECK_TIMEOUT" default:"2s"`
	// DeregisterCriticalAfter removes the service from Consul when its
	// liveness check stays critical that long, so that a crashed process
	// that never deregistered does not linger. Readiness does not count: a
	// service whose database is down stays registered and comes back to
	// traffic when the database does.
	DeregisterCriticalAfter time.Duration `env:"CONSUL_DEREGISTER_CRITICAL_AFTER" default:"1m"`
}

// Default values for Config fields left zero.
const (
	DefaultHTTPAddr                = "127.0.0.1:8500"
	DefaultCheckInterval           = 5 * time.Second
	DefaultCheckTimeout            = 2 * time.Second
	DefaultDeregisterCriticalAfter = time.Minute
)

// Retry pacing while the agent is not reachable yet: it usually starts
// alongside the service, so the first retries come fast.
const (
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 2 * time.Second
	attemptTimeout = 5 * time.Second
)

// Registration is a service registered by Register.
type Registration struct {
	client *api.Client
	id     string
	log    hclog.Logger

	mu   sync.Mutex
	done bool
}

// Register registers the service described by cfg, with a readiness and a
// liveness HTTP check, in the Consul agent at cfg.HTTPAddr. While the agent
// cannot be reached or answers 5xx it retries with backoff until ctx ends;
// other refusals (bad definition, ACL) fail at once. Registering again with
// the same ID replaces the earlier definition and its checks.
func Register(ctx context.Context, cfg Config, log hclog.Logger) (*Registration, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("consulreg")
	svc, err := cfg.service()
	if err != nil {
		return nil, err
	}
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", addr, err)
	}

	wait := minBackoff
	for attempt := 1; ; attempt++ {
		err := register(ctx, client, svc)
		if err == nil {
			break
		}
		if !retryable(err) {
			return nil, fmt.Errorf("register %s: %w", svc.ID, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("register %s: %w; last attempt: %w", svc.ID, ctx.Err(), err)
		}
		log.Warn("consul agent not ready, retrying", "agent", addr, "id", svc.ID, "attempt", attempt, "in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("register %s: %w; last attempt: %w", svc.ID, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
	log.Info("registered in consul", "agent", addr, "id", svc.ID, "name", svc.Name,
		"address", svc.Address, "port", svc.Port, "ready", svc.Checks[0].HTTP)
	return &Registration{client: client, id: svc.ID, log: log}, nil
}

func register(ctx context.Context, client *api.Client, svc *api.AgentServiceRegistration) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	return client.Agent().ServiceRegisterOpts(svc, opts)
}

// retryable reports whether a registration error may go away by itself:
// the agent is not listening yet, is starting, or is overloaded.
func retryable(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests
	}
	return true
}

// ID returns the service ID the instance is registered under.
func (r *Registration) ID() string { return r.id }

// Deregister removes the service and its checks from the agent. Call it on
// shutdown before the server stops accepting requests, so peers stop
// picking this instance first. Calling it again after a success, or after
// Consul has already reaped the service, returns nil.
func (r *Registration) Deregister(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	err := r.client.Agent().ServiceDeregisterOpts(r.id, (&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if err != nil && !(errors.As(err, &se) && se.Code == http.StatusNotFound) {
		return fmt.Errorf("deregister %s: %w", r.id, err)
	}
	r.done = true
	r.log.Info("deregistered from consul", "id", r.id)
	return nil
}

// service validates cfg and builds the agent registration with defaults
// filled in.
func (cfg Config) service() (*api.AgentServiceRegistration, error) {
	if !validName(cfg.Name) {
		return nil, fmt.Errorf("service name %q: want a DNS label (a-z, 0-9, -)", cfg.Name)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("service port %d: out of range", cfg.Port)
	}
	id := cfg.ID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hostname for service id: %w", err)
		}
		id = fmt.Sprintf("%s-%s-%d", cfg.Name, host, cfg.Port)
	}
	checkHost := cfg.Address
	if checkHost == "" {
		checkHost = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(checkHost, strconv.Itoa(cfg.Port))
	ready := cfg.ReadyURL
	if ready == "" {
		ready = base + "/health/ready"
	}
	live := cfg.LiveURL
	if live == "" {
		live = base + "/health/live"
	}
	interval := durationOr(cfg.CheckInterval, DefaultCheckInterval)
	timeout := durationOr(cfg.CheckTimeout, DefaultCheckTimeout)
	reap := durationOr(cfg.DeregisterCriticalAfter, DefaultDeregisterCriticalAfter)

	return &api.AgentServiceRegistration{
		ID:      id,
		Name:    cfg.Name,
		Address: cfg.Address,
		Port:    cfg.Port,
		Tags:    cfg.Tags,
		Checks: api.AgentServiceChecks{
			{
				CheckID:  "service:" + id + ":ready",
				Name:     "ready",
				HTTP:     ready,
				Method:   http.MethodGet,
				Interval: interval.String(),
				Timeout:  timeout.String(),
				// Critical until the first check passes: no traffic before
				// the service says it is ready.
				Status: api.HealthCritical,
			},
			{
				CheckID:                        "service:" + id + ":live",
				Name:                           "live",
				HTTP:                           live,
				Method:                         http.MethodGet,
				Interval:                       interval.String(),
				Timeout:                        timeout.String(),
				Status:                         api.HealthCritical,
				DeregisterCriticalServiceAfter: reap.String(),
			},
		},
	}, nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// validName reports whether name is a single DNS label, which Consul needs
// to serve the service in DNS.
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
