// Command payment is the payment service: idempotent card payments of
// orders and their refunds, through a card processor (see README.md).
package main

import (
	"context"
	"errors"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/payment/internal/httpapi"
	"github.com/mylittleshopping/shop/services/payment/internal/payments"
	"github.com/mylittleshopping/shop/services/payment/internal/processor"
	"github.com/mylittleshopping/shop/services/payment/migrations"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/discovery"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the service.
type Config struct {
	Server    server.Config
	DB        pgdb.Config
	Processor processor.Config
	Payments  payments.Config
	Discovery discovery.Config
	Mesh      mesh.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

// Validate implements config.Validator for the rules across parts.
func (c *Config) Validate() error {
	if c.Payments.IdempotencyLease <= c.Processor.Timeout {
		// Otherwise a request still waiting for the processor loses its key
		// and a duplicate takes it over (harmless, the processor key is the
		// same, but the duplicate should be a 409).
		return errors.New("PAYMENT_IDEMPOTENCY_LEASE must be longer than PAYMENT_PROCESSOR_TIMEOUT")
	}
	return nil
}

func main() {
	log := logging.New("payment", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv); err != nil {
		log.Error("payment stopped", "error", err)
		os.Exit(1)
	}
}

// run wires the service and serves until ctx ends or SIGTERM/SIGINT
// (server.Run drains then); the reconciler and the key clean-up stop after
// the server.
func run(ctx context.Context, log hclog.Logger, lookupEnv func(string) (string, bool)) error {
	var cfg Config
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return err
	}
	logging.Starting(log, config.Fields(&cfg)...)

	// Peers and the database are found in Consul: DATABASE_URL names
	// <db>.service.consul, resolved at each new connection.
	resolver := discovery.New(cfg.Discovery, log)
	cfg.DB.Lookup = resolver.LookupHost
	pool, err := pgdb.OpenMigrated(ctx, cfg.DB, log, migrations.Set)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := mesh.Join(ctx, cfg.Mesh, "payment", log)
	if err != nil {
		return err
	}
	// The sandbox processor is found in Consul and called in the mesh; a
	// real processor's address passes through both untouched.
	proc, err := processor.New(cfg.Processor, resolver.Transport(m.Transport(nil)))
	if err != nil {
		return err
	}
	svc := payments.NewService(pool, proc, cfg.Payments, log)
	handler := httpapi.New(svc)

	srv := server.New(cfg.Server, handler, log, server.Check{Name: "database", Fn: pgdb.Ping(pool)})
	srv.Registry().MustRegister(svc.Collector())
	srv.UseMesh(m)
	srv.Go(svc.RunReconciler)
	srv.Go(svc.RunCleanup)
	return srv.Serve(ctx)
}
