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
		got, err := demo.Seed(ctx, s.DB, o)
		if err != nil || got != want {
			t.Fatalf("seed run %d: inserted %d (%v), want %d", i+1, got, err, want)
		}
	}
	var n, sellers, soldOut int
	if err := s.DB.QueryRow(ctx, `SELECT count(*), count(DISTINCT seller_id), count(*) FILTER (WHERE on_hand = 0) FROM products`).Scan(&n, &sellers, &soldOut); err != nil {
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

// TestDemoCatalogueAtStart: with INVENTORY_DEMO_PRODUCTS the service
// loads the demo catalogue into an empty catalogue at start, and leaves a
// catalogue that has products alone (a restart, a restored database, a
// shop in use), so that the demo never mixes into real products.
func TestDemoCatalogueAtStart(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("INVENTORY_DEMO_PRODUCTS", "40"), withEnv("INVENTORY_DEMO_SELLERS", "3"))
	count := func() int {
		var n int
		if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM products`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 40 {
		t.Fatalf("got %d products after the first start, want the 40 of the demo", n)
	}
	if page := s.list(t, "limit=5"); len(page.Items) != 5 {
		t.Errorf("the demo catalogue lists %d products on a page of 5", len(page.Items))
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.Env["INVENTORY_DEMO_PRODUCTS"] = "60"
	s.Start(t)
	if n := count(); n != 40 {
		t.Errorf("got %d products after a restart asking for 60, want 40: only an empty catalogue is seeded", n)
	}

	other := startService(t, withEnv("INVENTORY_DEMO_PRODUCTS", "0"))
	other.create(t, other.user(t, "seller", true), newProduct{Name: "A real product", Description: "Made here.", Price: money{Amount: 1200, Currency: "EUR"}, OnHand: 3})
	if err := other.Stop(); err != nil {
		t.Fatal(err)
	}
	other.Env["INVENTORY_DEMO_PRODUCTS"] = "40"
	other.Start(t)
	var n int
	if err := other.DB.QueryRow(context.Background(), `SELECT count(*) FROM products`).Scan(&n); err != nil || n != 1 {
		t.Errorf("a shop with one product of its own: got %d products (%v) after a start with the demo on, want 1", n, err)
	}
}
