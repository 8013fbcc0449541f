package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/inventory/internal/demo"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestSeed runs the command as `make seed` does, twice, on an empty
// database: it migrates it, fills it, and the second run adds nothing.
func TestSeed(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t) // no migrations: the command applies them
	env := config.MapLookup(map[string]string{"DATABASE_URL": url})
	o := demo.Options{Seed: 3, Sellers: 4, Products: 120}
	for range 2 {
		if err := run(context.Background(), logging.ForTest(t), env, o); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM products`).Scan(&n); err != nil || n != 120 {
		t.Errorf("got %d products (%v), want 120", n, err)
	}
	if err := run(context.Background(), logging.ForTest(t), config.MapLookup(nil), o); err == nil {
		t.Error("got no error without DATABASE_URL, want one naming it")
	}
}
