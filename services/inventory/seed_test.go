package main

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mylittleshopping/shop/services/inventory/internal/demo"
)

// TestDemoCatalogue: the generator is deterministic (same seed, same
// catalogue; a larger catalogue extends a smaller one), seeding is
// idempotent, and the seeded catalogue is searchable through the API.
func TestDemoCatalogue(t *testing.T) {
	t.Parallel()
	small := demo.Catalogue(demo.Options{Seed: 1, Sellers: 5, Products: 50})
	if diff := cmp.Diff(small, demo.Catalogue(demo.Options{Seed: 1, Sellers: 5, Products: 50})); diff != "" {
		t.Fatalf("the same seed gave another catalogue:\n%s", diff)
	}
	large := demo.Catalogue(demo.Options{Seed: 1, Sellers: 5, Products: 200})
	if diff := cmp.Diff(small, large[:50]); diff != "" {
		t.Errorf("a larger catalogue does not extend the smaller one:\n%s", diff)
	}
	if other := demo.Catalogue(demo.Options{Seed: 2, Sellers: 5, Products: 50}); other[0].ID == small[0].ID || other[0].Name == small[0].Name && other[1].Name == small[1].Name {
		t.Errorf("seed 2 gave the catalogue of seed 1")
	}

	s := startService(t)
	ctx := context.Background()
	o := demo.Options{Seed: 7, Sellers: 10, Products: 1500}
	for i, want := range []int{1500, 0} {
		got, err := demo.Seed(ctx, s.db, o)
		if err != nil || got != want {
			t.Fatalf("seed run %d: inserted %d (%v), want %d", i+1, got, err, want)
		}
	}
	var n, sellers, soldOut int
	if err := s.db.QueryRow(ctx, `SELECT count(*), count(DISTINCT seller_id), count(*) FILTER (WHERE on_hand = 0) FROM products`).Scan(&n, &sellers, &soldOut); err != nil {
		t.Fatal(err)
	}
	if n != 1500 || sellers != 10 || soldOut == 0 || soldOut > 300 {
		t.Errorf("got %d products of %d sellers, %d sold out; want 1500 of 10, about a tenth sold out", n, sellers, soldOut)
	}
	page := s.list(t, "q=bowls&limit=5")
	if len(page.Items) != 5 || page.NextPageToken == "" {
		t.Errorf("searching the demo catalogue for bowls found %d items, want a full page and more", len(page.Items))
	}
	s.list(t, "sort=price_desc&currency=USD&in_stock=true")
}
