// Command mailsink runs the Mailjet-compatible capture server of the dev
// cluster: services send mail to it through their usual Mailjet client
// (MAILJET_BASE_URL points here) and journeys read the messages back from
// GET /messages.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the process.
type Config struct {
	Server server.Config
	Sink   mailsink.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

func main() {
	log := logging.New("mailsink", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log); err != nil {
		log.Error("mailsink stopped", "error", err)
		os.Exit(1)
	}
}

// run wires configuration, the sink and the server, and serves until
// SIGTERM or SIGINT (server.Run drains then).
func run(ctx context.Context, log hclog.Logger) error {
	var cfg Config
	if err := config.Load(&cfg, os.LookupEnv); err != nil {
		return err
	}
	log.Info("starting", config.Fields(&cfg)...)
	sink, err := mailsink.New(cfg.Sink, log)
	if err != nil {
		return err
	}
	return server.Run(ctx, cfg.Server, sink, log)
}
