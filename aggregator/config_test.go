package main

import (
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/config"
)

// TestConfig checks the defaults load and that the rules across fields
// refuse what would break the saga or the server.
func TestConfig(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := config.Load(&cfg, config.MapLookup(nil)); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Peers.InventoryURL != "http://inventory.service.consul" || cfg.Tokens.JWKSURL != "http://auth.service.consul/.well-known/jwks.json" {
		t.Errorf("default peers are not Consul names: %+v", cfg.Peers)
	}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AGGREGATOR_RECOVERY_AGE": "20s"}, "AGGREGATOR_RECOVERY_AGE must be longer than AGGREGATOR_CHECKOUT_BUDGET"},
		{map[string]string{"AGGREGATOR_CHECKOUT_BUDGET": "40s", "AGGREGATOR_RECOVERY_AGE": "1m"}, "shorter than HTTP_WRITE_TIMEOUT"},
		{map[string]string{"AGGREGATOR_PAYMENT_CALL_TIMEOUT": "30s"}, "must not exceed AGGREGATOR_CHECKOUT_BUDGET"},
		{map[string]string{"AGGREGATOR_RETRY_ATTEMPTS": "0"}, "AGGREGATOR_RETRY_ATTEMPTS must be between 1 and 10"},
		{map[string]string{"AGGREGATOR_RATE_LIMIT": "-1"}, "AGGREGATOR_RATE_LIMIT"},
		{map[string]string{"AGGREGATOR_TRUSTED_PROXIES": "10.0.0.1"}, "is not a CIDR"},
		{map[string]string{"AGGREGATOR_RESERVATION_TTL": "48h"}, "AGGREGATOR_RESERVATION_TTL must be between"},
		{map[string]string{"AGGREGATOR_RECONCILE_GRACE": "30s"}, "AGGREGATOR_RECONCILE_GRACE must be longer than AGGREGATOR_RECOVERY_AGE"},
		{map[string]string{"AGGREGATOR_RECONCILE_WINDOW": "5m"}, "AGGREGATOR_RECONCILE_WINDOW must be longer than AGGREGATOR_RECONCILE_GRACE"},
		{map[string]string{"AGGREGATOR_RECONCILE_WINDOW": "1000h"}, "at most 720h"},
		{map[string]string{"AGGREGATOR_RECONCILE_BATCH": "101"}, "AGGREGATOR_RECONCILE_BATCH between 1 and 100"},
		{map[string]string{"AGGREGATOR_RECONCILE_INTERVAL": "0s"}, "AGGREGATOR_RECONCILE_INTERVAL must be positive"},
	}
	for _, tt := range tests {
		var cfg Config
		err := config.Load(&cfg, config.MapLookup(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error saying %q", tt.env, err, tt.want)
		}
	}
}

// TestTrustedProxies: by default only loopback (the dev cluster's HAProxy)
// is believed when it names the client; Terraform's trusted_proxies
// reaches the aggregator joined with commas (terraform/modules/shop), and
// each CIDR is kept.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := config.Load(&cfg, config.MapLookup(nil)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.RateLimit.TrustedProxies, ","); got != "127.0.0.1/32,::1/128" {
		t.Errorf("default trusted proxies: got %q, want loopback only", got)
	}
	env := map[string]string{"AGGREGATOR_TRUSTED_PROXIES": "10.0.1.10/32,10.0.1.11/32,10.0.1.12/32"}
	cfg = Config{}
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.RateLimit.TrustedProxies, " "); got != "10.0.1.10/32 10.0.1.11/32 10.0.1.12/32" {
		t.Errorf("got trusted proxies %q, want the three edge hosts", got)
	}
}
