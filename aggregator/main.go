// Command aggregator is the shop's public API: it calls the auth,
// inventory, orders and payment services (found through Consul) for every
// request of a buyer or a seller, composes their answers, runs the checkout
// saga and its recovery loop, and keeps no data of its own (see README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/auth"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/docs"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/aggregator/internal/pagecache"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/ratelimit"
	"github.com/mylittleshopping/shop/openapi"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/discovery"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the aggregator.
type Config struct {
	Server    server.Config
	Tokens    authn.Config
	Discovery discovery.Config
	Mesh      mesh.Config
	Peers     PeersConfig
	Checkout  CheckoutConfig
	RateLimit ratelimit.Config
	Pages     pagecache.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

// PeersConfig is where the services are and how they are called.
type PeersConfig struct {
	// The services' roots: Consul names (resolved through Consul DNS) in
	// the cluster, any URL elsewhere.
	AuthURL      string `env:"AGGREGATOR_AUTH_URL" default:"http://auth.service.consul"`
	InventoryURL string `env:"AGGREGATOR_INVENTORY_URL" default:"http://inventory.service.consul"`
	OrdersURL    string `env:"AGGREGATOR_ORDERS_URL" default:"http://orders.service.consul"`
	PaymentURL   string `env:"AGGREGATOR_PAYMENT_URL" default:"http://payment.service.consul"`
	// CallTimeout bounds one attempt of a call to auth, inventory or
	// orders; PaymentCallTimeout one to payment, which waits for the card
	// processor (PAYMENT_PROCESSOR_TIMEOUT, 10s by default) before it
	// answers 202.
	CallTimeout        time.Duration `env:"AGGREGATOR_CALL_TIMEOUT" default:"3s"`
	PaymentCallTimeout time.Duration `env:"AGGREGATOR_PAYMENT_CALL_TIMEOUT" default:"15s"`
	// Attempts is how many times an idempotent call is tried, each on
	// another instance; Backoff the first pause between two.
	Attempts int           `env:"AGGREGATOR_RETRY_ATTEMPTS" default:"3"`
	Backoff  time.Duration `env:"AGGREGATOR_RETRY_BACKOFF" default:"50ms"`
	// MaxInFlight caps the calls in flight to each service.
	MaxInFlight int `env:"AGGREGATOR_MAX_IN_FLIGHT" default:"128"`
	// A service's circuit opens after BreakerFailures consecutive failed
	// calls, stays open BreakerOpenFor, then lets BreakerProbes calls probe.
	BreakerFailures int           `env:"AGGREGATOR_BREAKER_FAILURES" default:"5"`
	BreakerOpenFor  time.Duration `env:"AGGREGATOR_BREAKER_OPEN_FOR" default:"5s"`
	BreakerProbes   int           `env:"AGGREGATOR_BREAKER_PROBES" default:"1"`
}

// CheckoutConfig is the budgets, the saga, the recovery loop and the
// reconciliation after a restore.
type CheckoutConfig struct {
	// RequestBudget bounds a request; CheckoutBudget a checkout or a
	// cancellation (which run to their end once started).
	RequestBudget  time.Duration `env:"AGGREGATOR_REQUEST_BUDGET" default:"10s"`
	CheckoutBudget time.Duration `env:"AGGREGATOR_CHECKOUT_BUDGET" default:"25s"`
	// ReservationTTL is how long a checkout's stock is held.
	ReservationTTL time.Duration `env:"AGGREGATOR_RESERVATION_TTL" default:"15m"`
	// The recovery loop: every RecoveryInterval, the orders left in a
	// non-final status for longer than RecoveryAge, RecoveryBatch at a time.
	RecoveryInterval time.Duration `env:"AGGREGATOR_RECOVERY_INTERVAL" default:"5s"`
	RecoveryAge      time.Duration `env:"AGGREGATOR_RECOVERY_AGE" default:"40s"`
	RecoveryBatch    int           `env:"AGGREGATOR_RECOVERY_BATCH" default:"50"`
	// FlagAfter: an order unfinished in one status for longer is flagged
	// for a person (logged at error once, listed at GET
	// /internal/orders/flagged, warned by GET /internal/health/orders).
	FlagAfter time.Duration `env:"AGGREGATOR_FLAG_AFTER" default:"10m"`
	// The reconciliation after a restore: every ReconcileInterval (and on
	// POST /internal/reconcile), the payments and reservations created and
	// the orders changed in the last ReconcileWindow, older than
	// ReconcileGrace, ReconcileBatch at a time.
	ReconcileInterval time.Duration `env:"AGGREGATOR_RECONCILE_INTERVAL" default:"5m"`
	ReconcileWindow   time.Duration `env:"AGGREGATOR_RECONCILE_WINDOW" default:"24h"`
	ReconcileGrace    time.Duration `env:"AGGREGATOR_RECONCILE_GRACE" default:"5m"`
	ReconcileBatch    int           `env:"AGGREGATOR_RECONCILE_BATCH" default:"100"`
}

// Validate implements config.Validator for the rules across parts.
func (c *Config) Validate() error {
	var errs []error
	p, k := c.Peers, c.Checkout
	if p.CallTimeout <= 0 || p.PaymentCallTimeout <= 0 || p.BreakerOpenFor <= 0 {
		errs = append(errs, errors.New("AGGREGATOR_CALL_TIMEOUT, AGGREGATOR_PAYMENT_CALL_TIMEOUT and AGGREGATOR_BREAKER_OPEN_FOR must be positive"))
	}
	if p.Attempts < 1 || p.Attempts > 10 {
		errs = append(errs, errors.New("AGGREGATOR_RETRY_ATTEMPTS must be between 1 and 10"))
	}
	if p.MaxInFlight < 1 || p.BreakerFailures < 1 || p.BreakerProbes < 1 {
		errs = append(errs, errors.New("AGGREGATOR_MAX_IN_FLIGHT, AGGREGATOR_BREAKER_FAILURES and AGGREGATOR_BREAKER_PROBES must be at least 1"))
	}
	if k.RequestBudget <= 0 || k.CheckoutBudget < k.RequestBudget {
		errs = append(errs, errors.New("AGGREGATOR_REQUEST_BUDGET must be positive and AGGREGATOR_CHECKOUT_BUDGET at least as long"))
	}
	if k.CheckoutBudget >= c.Server.WriteTimeout {
		errs = append(errs, errors.New("AGGREGATOR_CHECKOUT_BUDGET must be shorter than HTTP_WRITE_TIMEOUT, or the answer of a long checkout is cut"))
	}
	if p.PaymentCallTimeout > k.CheckoutBudget {
		errs = append(errs, errors.New("AGGREGATOR_PAYMENT_CALL_TIMEOUT must not exceed AGGREGATOR_CHECKOUT_BUDGET"))
	}
	if k.RecoveryAge <= k.CheckoutBudget {
		// Otherwise the loop would take orders a live checkout is still
		// working on.
		errs = append(errs, errors.New("AGGREGATOR_RECOVERY_AGE must be longer than AGGREGATOR_CHECKOUT_BUDGET"))
	}
	if k.RecoveryInterval <= 0 || k.RecoveryBatch < 1 || k.RecoveryBatch > 100 {
		errs = append(errs, errors.New("AGGREGATOR_RECOVERY_INTERVAL must be positive and AGGREGATOR_RECOVERY_BATCH between 1 and 100"))
	}
	if k.FlagAfter <= k.RecoveryAge {
		// Younger orders are not listed by the loop, so it could not flag
		// them at their bound.
		errs = append(errs, errors.New("AGGREGATOR_FLAG_AFTER must be longer than AGGREGATOR_RECOVERY_AGE"))
	}
	if k.ReconcileGrace <= k.RecoveryAge {
		// Otherwise a pass could take an order a live checkout, or the
		// recovery loop, has not finished with.
		errs = append(errs, errors.New("AGGREGATOR_RECONCILE_GRACE must be longer than AGGREGATOR_RECOVERY_AGE"))
	}
	if k.ReconcileWindow <= k.ReconcileGrace || k.ReconcileWindow > 30*24*time.Hour {
		errs = append(errs, errors.New("AGGREGATOR_RECONCILE_WINDOW must be longer than AGGREGATOR_RECONCILE_GRACE and at most 720h"))
	}
	if k.ReconcileInterval <= 0 || k.ReconcileBatch < 1 || k.ReconcileBatch > 100 {
		errs = append(errs, errors.New("AGGREGATOR_RECONCILE_INTERVAL must be positive and AGGREGATOR_RECONCILE_BATCH between 1 and 100"))
	}
	if k.ReservationTTL < time.Second || k.ReservationTTL > 24*time.Hour {
		errs = append(errs, errors.New("AGGREGATOR_RESERVATION_TTL must be between 1s and 24h"))
	}
	return errors.Join(errs...)
}

func main() {
	log := logging.New("aggregator", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv); err != nil {
		log.Error("aggregator stopped", "error", err)
		os.Exit(1)
	}
}

// run wires the aggregator and serves until ctx ends or SIGTERM/SIGINT
// (server.Run drains then); the recovery and reconciliation loops stop
// after the server.
func run(ctx context.Context, log hclog.Logger, lookupEnv func(string) (string, bool)) error {
	var cfg Config
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return err
	}
	logging.Starting(log, config.Fields(&cfg)...)

	m, err := mesh.Join(ctx, cfg.Mesh, "aggregator", log)
	if err != nil {
		return err
	}
	resolver := discovery.New(cfg.Discovery, log)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	// Each peer is found in Consul and called in the mesh (mutual TLS, its
	// identity checked).
	transport := httpx.PropagateRequestID{Base: resolver.Transport(m.Transport(base))}
	peerMetrics := peer.NewMetrics()
	newPeer := func(name, url string, timeout time.Duration) *peer.Peer {
		p := cfg.Peers
		return peer.New(peer.Config{
			Name: name, BaseURL: url, Timeout: timeout,
			Attempts: p.Attempts, Backoff: p.Backoff, MaxInFlight: p.MaxInFlight,
			Breaker: peer.BreakerConfig{Failures: p.BreakerFailures, OpenFor: p.BreakerOpenFor, Probes: p.BreakerProbes},
			Metrics: peerMetrics,
		}, transport, log)
	}
	authPeer := newPeer("auth", cfg.Peers.AuthURL, cfg.Peers.CallTimeout)
	invPeer := newPeer("inventory", cfg.Peers.InventoryURL, cfg.Peers.CallTimeout)
	ordPeer := newPeer("orders", cfg.Peers.OrdersURL, cfg.Peers.CallTimeout)
	payPeer := newPeer("payment", cfg.Peers.PaymentURL, cfg.Peers.PaymentCallTimeout)
	authClient, err := auth.NewClientWithResponses(authPeer.BaseURL(), auth.WithHTTPClient(authPeer))
	if err != nil {
		return fmt.Errorf("auth client: %w", err)
	}
	invClient, err := inventory.NewClientWithResponses(invPeer.BaseURL(), inventory.WithHTTPClient(invPeer))
	if err != nil {
		return fmt.Errorf("inventory client: %w", err)
	}
	ordClient, err := orders.NewClientWithResponses(ordPeer.BaseURL(), orders.WithHTTPClient(ordPeer))
	if err != nil {
		return fmt.Errorf("orders client: %w", err)
	}
	payClient, err := payment.NewClientWithResponses(payPeer.BaseURL(), payment.WithHTTPClient(payPeer))
	if err != nil {
		return fmt.Errorf("payment client: %w", err)
	}

	sellers := checkout.NewSellers(authClient)
	saga := checkout.New(invClient, ordClient, payClient, sellers, checkout.Config{ReservationTTL: cfg.Checkout.ReservationTTL}, log)
	reconciler := checkout.NewReconciler(saga, checkout.ReconcileConfig{
		Interval: cfg.Checkout.ReconcileInterval, Window: cfg.Checkout.ReconcileWindow,
		Grace: cfg.Checkout.ReconcileGrace, Batch: cfg.Checkout.ReconcileBatch,
		StepTimeout: cfg.Checkout.CheckoutBudget,
	}, log)

	// shop.yaml references the services' specs, which the public does not
	// see: it is served with those references resolved into it.
	spec, err := openapi.Bundle(openapi.FS, "shop.yaml")
	if err != nil {
		return fmt.Errorf("public spec: %w", err)
	}
	page, err := docs.Render(spec)
	if err != nil {
		return err
	}
	// Tokens are verified locally against auth's JWKS, fetched over HTTP
	// (through Consul in the cluster) and cached.
	verifier := authn.NewVerifier(cfg.Tokens, resolver.ClientOver(m.Transport(nil), 5*time.Second), log)
	handler := httpapi.New(httpapi.Deps{
		Auth: authClient, Inventory: invClient, Orders: ordClient, Payment: payClient,
		Saga: saga, Reconciler: reconciler, Verifier: verifier, Limiter: ratelimit.New(cfg.RateLimit),
		Pages: pagecache.New(cfg.Pages), Spec: spec, Docs: page,
		RequestBudget: cfg.Checkout.RequestBudget, CheckoutBudget: cfg.Checkout.CheckoutBudget,
	})

	ctx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var wg sync.WaitGroup
	wg.Go(func() {
		saga.Recover(ctx, checkout.RecoveryConfig{
			Interval: cfg.Checkout.RecoveryInterval, Age: cfg.Checkout.RecoveryAge,
			Batch: cfg.Checkout.RecoveryBatch, StepTimeout: cfg.Checkout.CheckoutBudget,
			FlagAfter: cfg.Checkout.FlagAfter,
		})
	})
	wg.Go(func() { reconciler.Run(ctx) })
	wg.Go(func() { verifier.Run(ctx) }) // learns auth's token revocations

	// No readiness check on the services: one of them down must cost its
	// own endpoints, not take every aggregator out of the load balancer.
	srv := server.New(cfg.Server, handler, log)
	srv.Registry().MustRegister(peerMetrics)
	srv.UseMesh(m)
	err = srv.Serve(ctx)
	stopLoop()
	wg.Wait()
	return err
}
