// Command auth is the auth service: accounts, email verification, passwords,
// and the tokens every service verifies (see README.md).
package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/auth/internal/accounts"
	"github.com/mylittleshopping/shop/services/auth/internal/httpapi"
	"github.com/mylittleshopping/shop/services/auth/internal/keys"
	"github.com/mylittleshopping/shop/services/auth/migrations"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/discovery"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/mesh"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// Config is the whole configuration of the service.
type Config struct {
	Server    server.Config
	DB        pgdb.Config
	Relay     outbox.RelayConfig
	Mail      mail.Config
	Tokens    authn.Config
	Discovery discovery.Config
	Mesh      mesh.Config
	Keys      keys.Config
	Accounts  accounts.Config
	// LogLevel is read once more by main, before the configuration, so that
	// a configuration error is logged at the right level; it is here to be
	// printed and documented with the rest.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

func main() {
	log := logging.New("auth", os.Stdout, os.Getenv("LOG_LEVEL"))
	if err := run(context.Background(), log, os.LookupEnv); err != nil {
		log.Error("auth stopped", "error", err)
		os.Exit(1)
	}
}

// run wires the service and serves until ctx ends or SIGTERM/SIGINT
// (server.Run drains then); the outbox relay stops after the server.
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
	pool, err := pgdb.OpenMigrated(ctx, cfg.DB, log, migrations.Set, outbox.Migrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	keySet, err := keys.Load(ctx, cfg.Keys, pool, log)
	if err != nil {
		return err
	}
	m, err := mesh.Join(ctx, cfg.Mesh, "auth", log)
	if err != nil {
		return err
	}
	// Peers (the JWKS, the mail sink) are found in Consul and called in the
	// mesh; Mailjet's own address passes through both untouched.
	peers := resolver.Transport(m.Transport(nil))
	sender, err := mail.NewSender(cfg.Mail, peers)
	if err != nil {
		return err
	}
	signer := authn.NewSigner(keySet.Signing, cfg.Tokens.Issuer, cfg.Tokens.Audience)
	svc := accounts.NewService(pool, cfg.Accounts, signer, sender, log)
	if cfg.Accounts.BootstrapAdminEmail != "" {
		if err := svc.EnsureAdmin(ctx, cfg.Accounts.BootstrapAdminEmail, cfg.Accounts.BootstrapAdminPassword); err != nil {
			return err
		}
	}
	if cfg.Accounts.DemoBuyerEmail != "" {
		if err := svc.EnsureDemoBuyer(ctx, cfg.Accounts.DemoBuyerEmail, cfg.Accounts.DemoBuyerPassword); err != nil {
			return err
		}
		if err := svc.EnsureDemoSellers(ctx, cfg.Accounts.DemoSellers, cfg.Accounts.DemoSeed, cfg.Accounts.DemoBuyerPassword); err != nil {
			return err
		}
	}
	// auth verifies its own tokens as every service does: against the JWKS
	// it publishes, fetched over HTTP (through Consul in the cluster).
	jwksClient := &http.Client{Transport: peers, Timeout: 5 * time.Second}
	verifier := authn.NewVerifier(cfg.Tokens, jwksClient, log)
	handler := httpapi.New(svc, keySet.JWKS(), verifier)

	relay, err := outbox.NewRelay(pool, cfg.Relay, map[string]outbox.Handler{
		mail.Topic:          mail.Handler(sender),
		accounts.EmailTopic: svc.DeliverEmail,
	}, log)
	if err != nil {
		return err
	}
	srv := server.New(cfg.Server, handler, log, server.Check{Name: "database", Fn: pgdb.Ping(pool)})
	srv.Registry().MustRegister(relay.Collector())
	srv.UseMesh(m)
	srv.Go(func(ctx context.Context) { _ = relay.Run(ctx) }) // Run returns nil: it retries forever
	srv.Go(svc.RunSweeper)
	srv.Go(verifier.Run) // polls the revocations, this service's own included
	return srv.Serve(ctx)
}
