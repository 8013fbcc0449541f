package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// TestConfigErrors: run refuses a bad configuration before touching
// anything, naming the variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value, want string
	}{
		{"no database", "DATABASE_URL", "", "DATABASE_URL is required"},
		{"TTL beyond a day", "INVENTORY_RESERVATION_TTL", "48h", "INVENTORY_RESERVATION_TTL"},
		{"zero sweep interval", "INVENTORY_SWEEP_INTERVAL", "0s", "INVENTORY_SWEEP_INTERVAL"},
		{"empty sweep batch", "INVENTORY_SWEEP_BATCH", "0", "INVENTORY_SWEEP_BATCH"},
		{"sweep batch not a number", "INVENTORY_SWEEP_BATCH", "many", "INVENTORY_SWEEP_BATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", tt.key: tt.value}
			err := run(t.Context(), logging.ForTest(t), config.MapLookup(env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestConfigPrintedMasked: the configuration is logged at start, with the
// database password masked.
func TestConfigPrintedMasked(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t, migrations.Set))
	if err != nil {
		t.Fatal(err)
	}
	const password = "not-in-the-logs-7f3a"
	u.User = url.UserPassword(u.User.Username(), password) // the test server trusts any password
	s := startService(t, withEnv("DATABASE_URL", u.String()), withEnv("INVENTORY_RESERVATION_TTL", "10m"))
	logs := s.Logs.String()
	if !strings.Contains(logs, `"INVENTORY_RESERVATION_TTL":"10m0s"`) || !strings.Contains(logs, `"DATABASE_URL":"postgres://postgres:xxxxx@`) {
		t.Errorf("the start line does not show the configuration with the password masked:\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Error("the logs hold the database password")
	}
}
