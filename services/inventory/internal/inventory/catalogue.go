package inventory

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Sort is an order of the catalogue.
type Sort string

// The orders. Each ends with the product id, so that the order is total and
// a page can start exactly after the last product of the previous one.
const (
	SortRelevance Sort = "relevance"  // best text match first (needs a text)
	SortNewest    Sort = "newest"     // most recently created first
	SortPriceAsc  Sort = "price_asc"  // cheapest first
	SortPriceDesc Sort = "price_desc" // dearest first
)

// Valid reports whether s is one of the orders.
func (s Sort) Valid() bool {
	switch s {
	case SortRelevance, SortNewest, SortPriceAsc, SortPriceDesc:
		return true
	}
	return false
}

// Cursor is the position after which a page starts: the sort key of the
// last product of the previous page, and its id (keyset pagination). Only
// the key of its Sort is meaningful.
type Cursor struct {
	Sort      Sort
	CreatedAt time.Time // SortNewest
	Price     int64     // SortPriceAsc, SortPriceDesc
	Rank      float32   // SortRelevance
	ID        uuid.UUID
}

// Query selects a page of the catalogue. Zero fields do not filter.
type Query struct {
	// Text is searched for in names (weighing most) and descriptions, with
	// English stemming and web-search syntax ("quoted phrase", or, -word).
	Text     string
	SellerID *uuid.UUID
	Currency string
	MinPrice *int64
	MaxPrice *int64
	// InStock keeps only products with units available.
	InStock bool
	Sort    Sort
	Limit   int
	After   *Cursor
}

// Search returns a page of active products matching q and the cursor of the
// next page (nil on the last).
//
// Pages are stable while products are added or sold: each page starts
// strictly after the previous page's last (key, id), so a product present
// when the walk began is returned exactly once, unless its own sort key
// changes meanwhile (its price is edited).
func (s *Service) Search(ctx context.Context, q Query) ([]Product, *Cursor, error) {
	rows, err := searchProducts(ctx, s.pool, q)
	if err != nil {
		return nil, nil, err
	}
	var next *Cursor
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		next = &Cursor{Sort: q.Sort, ID: last.ID}
		switch q.Sort {
		case SortRelevance:
			next.Rank = last.rank
		case SortPriceAsc, SortPriceDesc:
			next.Price = last.Price.Amount
		default:
			next.CreatedAt = last.CreatedAt
		}
	}
	out := make([]Product, len(rows))
	for i, r := range rows {
		out[i] = r.Product
	}
	return out, next, nil
}
