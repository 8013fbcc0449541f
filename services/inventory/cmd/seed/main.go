// Command seed fills an inventory database (DATABASE_URL) with the demo
// catalogue: deterministic sellers and products with stock. It migrates the
// database first, and running it again inserts nothing new, so the dev
// cluster can run it at every start:
//
//	DATABASE_URL=postgres://… go run ./services/inventory/cmd/seed -products 5000 -seed 1
package main

import (
	"context"
	"flag"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/inventory/internal/demo"
	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Config is what seed reads from the environment.
type Config struct {
	DB pgdb.Config
}

func main() {
	var o demo.Options
	flag.Uint64Var(&o.Seed, "seed", 1, "seed of the generator: the same seed gives the same catalogue")
	flag.IntVar(&o.Sellers, "sellers", 50, "number of sellers")
	flag.IntVar(&o.Products, "products", 5000, "number of products")
	flag.Parse()
	log := logging.New("inventory-seed", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv, o); err != nil {
		log.Error("seed failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log hclog.Logger, lookupEnv func(string) (string, bool), o demo.Options) error {
	var cfg Config
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return err
	}
	log.Info("seeding", append(config.Fields(&cfg), "seed", o.Seed, "sellers", o.Sellers, "products", o.Products)...)
	pool, err := pgdb.Open(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pgdb.Migrate(ctx, pool, log, migrations.Set); err != nil {
		return err
	}
	inserted, err := demo.Seed(ctx, pool, o)
	if err != nil {
		return err
	}
	log.Info("seeded", "products", o.Products, "inserted", inserted, "already_there", o.Products-inserted)
	return nil
}
