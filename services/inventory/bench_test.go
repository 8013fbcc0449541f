package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/inventory/internal/demo"
	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// benchCatalogue is the demo catalogue of the benchmarks, the one
// `go run ./services/inventory/cmd/seed` loads in the dev cluster.
var benchCatalogue = demo.Options{Seed: 1, Sellers: 50, Products: 5000}

// benchService is the inventory domain on a fresh database holding the
// demo catalogue.
func benchService(b *testing.B) (*inventory.Service, *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	pool := pgtest.New(b, migrations.Set)
	if _, err := demo.Seed(ctx, pool, benchCatalogue); err != nil {
		b.Fatal(err)
	}
	cfg := inventory.Config{ReservationTTL: 15 * time.Minute, SweepInterval: time.Hour, SweepBatch: 100}
	return inventory.NewService(pool, cfg, logging.NewNull()), pool
}

// BenchmarkSearch is one catalogue page (20 products) of the 5,000-product
// demo catalogue, as browsing buyers ask for it, several at once: ranked
// text search, text search with filters, browsing by price, newest first.
// Target: < 5ms/op on 2 cores.
func BenchmarkSearch(b *testing.B) {
	svc, _ := benchService(b)
	low, high := int64(2000), int64(20000)
	queries := []struct {
		name string
		q    inventory.Query
	}{
		{"text", inventory.Query{Text: "oak bowl", Sort: inventory.SortRelevance}},
		{"text+filters", inventory.Query{Text: "handmade lamp", Currency: "EUR", MinPrice: &low, MaxPrice: &high, InStock: true, Sort: inventory.SortRelevance}},
		{"browse by price", inventory.Query{Currency: "EUR", InStock: true, Sort: inventory.SortPriceAsc}},
		{"newest", inventory.Query{Sort: inventory.SortNewest}},
	}
	for _, tt := range queries {
		q := tt.q
		q.Limit = 20
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := svc.Search(context.Background(), q); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReserve is the checkout's stock step: reserving 1 to 3 lines of
// random products for a new order (one transaction, one conditional update
// per line in product id order, one round trip for them), many checkouts
// at once. Target: < 3ms/op on 2 cores.
func BenchmarkReserve(b *testing.B) {
	svc, pool := benchService(b)
	ctx := context.Background()
	// Stock for any number of iterations: the benchmark measures
	// reservations that succeed.
	if _, err := pool.Exec(ctx, `UPDATE products SET on_hand = 1000000000`); err != nil {
		b.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM products`)
	if err != nil {
		b.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) == 0 {
		b.Fatalf("no products to reserve: %v", rows.Err())
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seq.Add(1), 0))
		for pb.Next() {
			lines := make([]inventory.Line, 1+r.IntN(3))
			for i, p := range r.Perm(len(ids))[:len(lines)] {
				lines[i] = inventory.Line{ProductID: ids[p], Quantity: 1 + r.IntN(2)}
			}
			if _, _, err := svc.Reserve(ctx, inventory.ReserveRequest{OrderID: uuid.New(), Lines: lines}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
