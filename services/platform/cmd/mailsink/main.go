// Command mailsink runs the Mailjet-compatible capture server of the dev
// cluster: services send mail to it through their usual Mailjet client
// (MAILJET_BASE_URL points here) and journeys read the messages back from
// GET /messages.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the process.
type Config struct {
	Server server.Config
	Sink   mailsink.Config
	Mesh   mesh.Config
	// ViewAddr, when set, serves the sink's inbox and test controls
	// (GET and DELETE /messages, POST /control/fail) in plain HTTP for the
	// operator and the tests, but not the Send API, which is in the mesh.
	ViewAddr string `env:"MAILSINK_VIEW_ADDR" default:""`
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
	logging.Starting(log, config.Fields(&cfg)...)
	sink, err := mailsink.New(cfg.Sink, log)
	if err != nil {
		return err
	}
	m, err := mesh.Join(ctx, cfg.Mesh, "mailsink", log)
	if err != nil {
		return err
	}
	srv := server.New(cfg.Server, sink, log)
	srv.UseMesh(m)
	if cfg.ViewAddr != "" {
		ln, err := net.Listen("tcp", cfg.ViewAddr)
		if err != nil {
			return fmt.Errorf("listen %s (view): %w", cfg.ViewAddr, err)
		}
		view := &http.Server{Handler: withoutSend(sink), ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout}
		go func() { _ = view.Serve(ln) }()
		defer view.Close()
		log.Info("inbox view", "addr", ln.Addr().String())
	}
	return srv.Serve(ctx)
}

// withoutSend is the sink without its Send API: the senders reach that
// through the mesh only.
func withoutSend(sink http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3") {
			http.NotFound(w, r)
			return
		}
		sink.ServeHTTP(w, r)
	})
}
