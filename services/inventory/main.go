// Command inventory is the inventory service: the catalogue, sellers'
// products and stock, carts, and the stock reservations of the checkout
// (see README.md).
package main

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/inventory/internal/demo"
	"github.com/mylittleshopping/shop/services/inventory/internal/httpapi"
	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/authn"
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
	Tokens    authn.Config
	Discovery discovery.Config
	Mesh      mesh.Config
	Inventory inventory.Config
	Demo      demo.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

func main() {
	log := logging.New("inventory", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv); err != nil {
		log.Error("inventory stopped", "error", err)
		os.Exit(1)
	}
}

// run wires the service and serves until ctx ends or SIGTERM/SIGINT
// (server.Run drains then); the reservation sweeper stops after the server.
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
	if n, err := demo.SeedEmpty(ctx, pool, cfg.Demo); err != nil {
		return err
	} else if n > 0 {
		log.Info("demo catalogue loaded", "products", n)
	}
	svc := inventory.NewService(pool, cfg.Inventory, log)
	// Tokens are verified locally against auth's JWKS, fetched over HTTP
	// (through Consul in the cluster).
	m, err := mesh.Join(ctx, cfg.Mesh, "inventory", log)
	if err != nil {
		return err
	}
	jwksClient := resolver.ClientOver(m.Transport(nil), 5*time.Second)
	verifier := authn.NewVerifier(cfg.Tokens, jwksClient, log)
	handler := httpapi.New(svc, verifier)

	srv := server.New(cfg.Server, handler, log, server.Check{Name: "database", Fn: pgdb.Ping(pool)})
	srv.UseMesh(m)
	srv.Go(svc.RunSweeper)
	srv.Go(verifier.Run) // learns auth's token revocations
	return srv.Serve(ctx)
}
