// Command sandbox-processor runs the sandbox card processor of the dev
// cluster: the payment service charges cards through it
// (PAYMENT_PROCESSOR_URL points here) with the test card numbers of
// services/payment/README.md.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/payment/sandbox"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the process.
type Config struct {
	Server  server.Config
	Sandbox sandbox.Config
	Mesh    mesh.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

func main() {
	log := logging.New("sandbox-processor", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv); err != nil {
		log.Error("sandbox-processor stopped", "error", err)
		os.Exit(1)
	}
}

// run wires configuration, the sandbox and the server, and serves until
// SIGTERM or SIGINT (server.Run drains then).
func run(ctx context.Context, log hclog.Logger, lookupEnv func(string) (string, bool)) error {
	var cfg Config
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return err
	}
	logging.Starting(log, config.Fields(&cfg)...)
	p, err := sandbox.New(cfg.Sandbox, log)
	if err != nil {
		return err
	}
	m, err := mesh.Join(ctx, cfg.Mesh, "sandbox-processor", log)
	if err != nil {
		return err
	}
	srv := server.New(cfg.Server, p, log)
	srv.UseMesh(m)
	return srv.Serve(ctx)
}
