// Package demo generates the demo catalogue: sellers and products with
// prices and stock, identical for a given seed, for the dev cluster and the
// benchmarks. Product i depends only on the seed, i and the number of
// sellers, so a larger catalogue extends a smaller one, and seeding is
// idempotent: running it again inserts nothing.
package demo

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	shopdemo "github.com/mylittleshopping/shop/services/platform/demo"
)

// Options sizes a catalogue.
type Options struct {
	Seed     uint64
	Sellers  int
	Products int
}

// Product is one generated product, as stored.
type Product struct {
	ID          uuid.UUID
	SellerID    uuid.UUID
	Name        string
	Description string
	Amount      int64
	Currency    string
	OnHand      int
	CreatedAt   time.Time
}

// epoch is when the demo shop opened: product i is created i minutes later,
// so "newest" has a fixed order.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Sellers returns the demo sellers' ids: the accounts auth ensures for
// the demo (platform/demo), so that the demo catalogue can be bought.
func Sellers(o Options) []uuid.UUID {
	out := make([]uuid.UUID, o.Sellers)
	for i := range out {
		out[i] = shopdemo.SellerID(o.Seed, i)
	}
	return out
}

// Catalogue returns the demo products.
func Catalogue(o Options) []Product {
	sellers := Sellers(o)
	out := make([]Product, o.Products)
	for i := range out {
		out[i] = product(o.Seed, i, sellers)
	}
	return out
}

func product(seed uint64, i int, sellers []uuid.UUID) Product {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	kind := kinds[r.IntN(len(kinds))]
	adjective := adjectives[r.IntN(len(adjectives))]
	material := materials[r.IntN(len(materials))]
	p := Product{
		ID:        newID(r),
		SellerID:  sellers[r.IntN(len(sellers))],
		Name:      fmt.Sprintf("%s %s %s", adjective, material, kind.noun),
		CreatedAt: epoch.Add(time.Duration(i) * time.Minute),
	}
	var d strings.Builder
	fmt.Fprintf(&d, "A %s %s made of %s. ", strings.ToLower(adjective), kind.noun, strings.ToLower(material))
	for range 1 + r.IntN(3) {
		d.WriteString(sentences[r.IntN(len(sentences))])
		d.WriteByte(' ')
	}
	p.Description = strings.TrimSpace(d.String())
	// Prices between the kind's bounds, ending in 99 or 50 as shops do.
	p.Amount = kind.min + r.Int64N(kind.max-kind.min+1)
	p.Amount = p.Amount - p.Amount%100 + []int64{99, 50, 0}[r.IntN(3)]
	if p.Amount <= 0 {
		p.Amount = 99
	}
	switch n := r.IntN(10); {
	case n < 8:
		p.Currency = "EUR"
	case n < 9:
		p.Currency = "USD"
	default:
		p.Currency = "GBP"
	}
	if r.IntN(10) > 0 { // one product in ten is sold out
		p.OnHand = 1 + r.IntN(200)
	}
	return p
}

// newID draws a version 4 UUID from r.
func newID(r *rand.Rand) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], r.Uint64())
	binary.BigEndian.PutUint64(id[8:], r.Uint64())
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// insertSQL adds a chunk of products, leaving alone those already there.
const insertSQL = `
INSERT INTO products (id, seller_id, name, description, price_amount, currency, on_hand, created_at, updated_at)
SELECT t.id, t.seller_id, t.name, t.description, t.amount, t.currency, t.on_hand, t.created_at, t.created_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::integer[], $8::timestamptz[])
	AS t (id, seller_id, name, description, amount, currency, on_hand, created_at)
ON CONFLICT (id) DO NOTHING`

// chunk is how many products one statement inserts.
const chunk = 1000

// Config is the demo catalogue a service loads at start into an empty
// catalogue (Products 0: none), so that a newcomer's first look at a dev
// shop is not an empty shop.
type Config struct {
	Products int    `env:"INVENTORY_DEMO_PRODUCTS" default:"0"`
	Sellers  int    `env:"INVENTORY_DEMO_SELLERS" default:"50"`
	Seed     uint64 `env:"INVENTORY_DEMO_SEED" default:"1"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.Products < 0 || c.Products > 1_000_000 {
		return fmt.Errorf("INVENTORY_DEMO_PRODUCTS must be between 0 (no demo catalogue) and 1000000, got %d", c.Products)
	}
	if c.Sellers < 1 || c.Sellers > 10_000 {
		return fmt.Errorf("INVENTORY_DEMO_SELLERS must be between 1 and 10000, got %d", c.Sellers)
	}
	return nil
}

// SeedEmpty seeds the catalogue of c when it has no product at all, and
// returns how many products it inserted: a shop that has products of its
// own (or a restored one) is left as it is. Two instances starting at once
// both seed; the products being the same, the second inserts nothing.
func SeedEmpty(ctx context.Context, pool *pgxpool.Pool, c Config) (int, error) {
	if c.Products == 0 {
		return 0, nil
	}
	var some bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM products)`).Scan(&some); err != nil {
		return 0, fmt.Errorf("demo catalogue: %w", err)
	}
	if some {
		return 0, nil
	}
	return Seed(ctx, pool, Options{Seed: c.Seed, Sellers: c.Sellers, Products: c.Products})
}

// Seed inserts the catalogue of o into the inventory database behind pool
// (migrated) and returns how many products were new.
func Seed(ctx context.Context, pool *pgxpool.Pool, o Options) (int, error) {
	if o.Sellers < 1 || o.Products < 0 {
		return 0, fmt.Errorf("seed: need at least one seller and no negative product count, got %d and %d", o.Sellers, o.Products)
	}
	products := Catalogue(o)
	inserted := 0
	for start := 0; start < len(products); start += chunk {
		part := products[start:min(start+chunk, len(products))]
		var (
			ids, sellers       = make([]uuid.UUID, len(part)), make([]uuid.UUID, len(part))
			names, descs, curs = make([]string, len(part)), make([]string, len(part)), make([]string, len(part))
			amounts            = make([]int64, len(part))
			onHands            = make([]int32, len(part))
			created            = make([]time.Time, len(part))
		)
		for i, p := range part {
			ids[i], sellers[i], names[i], descs[i] = p.ID, p.SellerID, p.Name, p.Description
			amounts[i], curs[i], onHands[i], created[i] = p.Amount, p.Currency, int32(p.OnHand), p.CreatedAt
		}
		tag, err := pool.Exec(ctx, insertSQL, ids, sellers, names, descs, amounts, curs, onHands, created)
		if err != nil {
			return inserted, fmt.Errorf("seed products %d-%d: %w", start, start+len(part)-1, err)
		}
		inserted += int(tag.RowsAffected())
	}
	if inserted > 0 {
		// A bulk load leaves the search index's new entries in GIN's pending
		// list and the statistics stale, and the planner then prefers a
		// sequential scan (20× slower here) until autovacuum comes by: do
		// its work now.
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE products`); err != nil {
			return inserted, fmt.Errorf("seed: vacuum: %w", err)
		}
	}
	return inserted, nil
}

// kind is a sort of product with its price range in minor units.
type kind struct {
	noun     string
	min, max int64
}

var kinds = []kind{
	{"mug", 800, 3500}, {"bowl", 1200, 6000}, {"plate", 900, 4500}, {"vase", 1500, 12000},
	{"teapot", 2500, 9000}, {"lamp", 3000, 25000}, {"chair", 6000, 60000}, {"stool", 4000, 30000},
	{"table", 15000, 150000}, {"shelf", 5000, 40000}, {"basket", 1500, 8000}, {"blanket", 3000, 20000},
	{"cushion", 1500, 7000}, {"rug", 6000, 90000}, {"clock", 2500, 15000}, {"mirror", 4000, 30000},
	{"candle", 500, 4000}, {"notebook", 600, 3500}, {"pen", 300, 12000}, {"backpack", 3500, 20000},
	{"wallet", 2000, 12000}, {"scarf", 1800, 15000}, {"hat", 1500, 9000}, {"knife", 2500, 40000},
	{"cutting board", 1800, 9000}, {"spoon", 400, 2500}, {"jar", 600, 3000}, {"tray", 1500, 8000},
	{"planter", 1200, 9000}, {"bench", 12000, 90000},
}

var adjectives = []string{
	"Rustic", "Handmade", "Minimalist", "Vintage", "Nordic", "Hand-thrown", "Speckled", "Glazed",
	"Carved", "Woven", "Polished", "Hammered", "Recycled", "Artisan", "Classic", "Modern",
	"Folding", "Oversized", "Compact", "Heirloom",
}

var materials = []string{
	"Oak", "Walnut", "Ash", "Bamboo", "Stoneware", "Porcelain", "Terracotta", "Linen",
	"Wool", "Leather", "Brass", "Copper", "Steel", "Glass", "Rattan",
}

var sentences = []string{
	"Made in a small workshop by a single maker.",
	"Every piece is slightly different.",
	"Finished with natural oil and beeswax.",
	"Dishwasher safe and built to last.",
	"Ships in plastic-free packaging.",
	"Pairs well with the rest of the collection.",
	"A thoughtful gift for a new home.",
	"Sourced from sustainably managed forests.",
	"Designed to be repaired rather than replaced.",
	"Each one is signed and numbered.",
	"Lightweight enough to move around every day.",
	"Comes with a ten-year guarantee.",
}
