package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mylittleshopping/shop/services/platform/config"
)

type dbConfig struct {
	URL string `env:"DATABASE_URL" required:"true" secret:"true"`
}

type svcConfig struct {
	Addr     string        `env:"HTTP_ADDR" default:":8080"`
	Timeout  time.Duration `env:"TIMEOUT" default:"2s"`
	Replicas int           `env:"REPLICAS" default:"2"`
	Debug    bool          `env:"DEBUG"`
	Peers    []string      `env:"PEERS"`
	APIKey   string        `env:"API_KEY" secret:"true"`
	DB       dbConfig
	ignored  string
}

func (c *svcConfig) Validate() error {
	if c.Replicas < 1 {
		return errors.New("REPLICAS must be at least 1")
	}
	return nil
}

func TestLoad(t *testing.T) {
	t.Parallel()
	var cfg svcConfig
	env := map[string]string{
		"TIMEOUT": "750ms", "DEBUG": "true", "PEERS": "a, b,,c",
		"API_KEY": "sk_live_123", "DATABASE_URL": "postgres://shop:hunter2@db:5432/shop",
	}
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	want := svcConfig{Addr: ":8080", Timeout: 750 * time.Millisecond, Replicas: 2, Debug: true,
		Peers: []string{"a", "b", "c"}, APIKey: "sk_live_123", DB: dbConfig{URL: env["DATABASE_URL"]}}
	if diff := cmp.Diff(want, cfg, cmp.AllowUnexported(svcConfig{})); diff != "" {
		t.Fatalf("config mismatch (-want +got):\n%s", diff)
	}
	desc := config.Describe(&cfg)
	if desc["API_KEY"] != "xxxxx" {
		t.Errorf("got API_KEY %q, want it masked", desc["API_KEY"])
	}
	if got := desc["DATABASE_URL"]; strings.Contains(got, "hunter2") || !strings.Contains(got, "db:5432/shop") {
		t.Errorf("got DATABASE_URL %q, want the password masked and the rest readable", got)
	}
	if desc["TIMEOUT"] != "750ms" || desc["PEERS"] != "a,b,c" {
		t.Errorf("got TIMEOUT %q PEERS %q, want 750ms and a,b,c", desc["TIMEOUT"], desc["PEERS"])
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"required missing", map[string]string{}, []string{"DATABASE_URL is required"}},
		{"bad duration", map[string]string{"DATABASE_URL": "x", "TIMEOUT": "soon"}, []string{`TIMEOUT="soon": not a duration`}},
		{"bad int and bool together", map[string]string{"DATABASE_URL": "x", "REPLICAS": "two", "DEBUG": "yes please"}, []string{"REPLICAS", "DEBUG"}},
		{"rule across fields", map[string]string{"DATABASE_URL": "x", "REPLICAS": "0"}, []string{"REPLICAS must be at least 1"}},
		{"secret not echoed", map[string]string{"DATABASE_URL": "x", "API_KEY": "sk_live_123"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg svcConfig
			err := config.Load(&cfg, config.MapLookup(tt.env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want an error naming %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretNotInError(t *testing.T) {
	t.Parallel()
	type c struct {
		Port int `env:"PORT" secret:"true"`
	}
	var cfg c
	err := config.Load(&cfg, config.MapLookup(map[string]string{"PORT": "s3cr3t"}))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("got %v, want an error that does not echo the secret", err)
	}
}
