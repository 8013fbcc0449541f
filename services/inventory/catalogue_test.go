package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// names lists the names of a page's products (nil for none).
func names(ps []product) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func (s *service) list(t testing.TB, query string) productPage {
	t.Helper()
	var page productPage
	s.do(t, "GET", "/v1/products?"+query, "", nil).Want(t, http.StatusOK).Decode(t, &page)
	return page
}

// TestSearchRanking is acceptance 6, first half: a match in the name ranks
// above a match in the description, stemming finds other forms of a word,
// and web-search syntax works.
func TestSearchRanking(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	// Created name match first, so that "newest" order would put the
	// description match first: only the ranking can put it back.
	s.create(t, seller, newProduct{Name: "Walnut salad bowl", Description: "Turned from a single block.", OnHand: 3})
	s.create(t, seller, newProduct{Name: "Linen napkins", Description: "They go well with any salad bowl.", OnHand: 3})
	s.create(t, seller, newProduct{Name: "Oak cutting board", Description: "For bread and cheese.", OnHand: 3})
	s.create(t, seller, newProduct{Name: "Ceramic bowls, set of four", Description: "Stoneware, speckled glaze.", OnHand: 3})

	// Results come in tiers of equal rank; within a tier the order is the
	// ids' (any, for the test).
	tests := []struct {
		q     string
		tiers [][]string
	}{
		{"salad bowl", [][]string{{"Walnut salad bowl"}, {"Linen napkins"}}},
		{"bowls", [][]string{{"Walnut salad bowl", "Ceramic bowls, set of four"}, {"Linen napkins"}}},
		{"bread", [][]string{{"Oak cutting board"}}},
		{`"salad bowl" -walnut`, [][]string{{"Linen napkins"}}},
		{"walnut or oak", [][]string{{"Walnut salad bowl", "Oak cutting board"}}},
		{"nothing matches this", nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			t.Parallel()
			got := names(s.list(t, "q="+url.QueryEscape(tt.q)).Items)
			var tiers [][]string
			rest := got
			for _, tier := range tt.tiers {
				n := min(len(tier), len(rest))
				tiers = append(tiers, sorted(rest[:n]))
				rest = rest[n:]
			}
			var want [][]string
			for _, tier := range tt.tiers {
				want = append(want, sorted(tier))
			}
			if diff := cmp.Diff(want, tiers); diff != "" || len(rest) > 0 {
				t.Errorf("results for %q: got %q, want tiers %q (-want +got):\n%s", tt.q, got, tt.tiers, diff)
			}
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestSearchFilters is acceptance 6, second half: every filter alone and
// combined, archived products hidden from lists but readable by id.
func TestSearchFilters(t *testing.T) {
	t.Parallel()
	s := startService(t)
	alice, bob := s.user(t, "seller", true), s.user(t, "seller", true)
	mk := func(seller user, name string, amount int64, currency string, onHand int) product {
		return s.create(t, seller, newProduct{Name: name, Description: "A lamp for reading.", Price: money{amount, currency}, OnHand: onHand})
	}
	mk(alice, "Brass desk lamp", 4500, "EUR", 3)
	mk(alice, "Paper floor lamp", 12000, "EUR", 0)
	mk(alice, "Oak side table", 9000, "EUR", 2)
	mk(bob, "Copper wall lamp", 6000, "EUR", 1)
	mk(bob, "Tin lantern", 3000, "USD", 5)
	archived := mk(bob, "Glass pendant lamp", 5000, "EUR", 4)
	s.do(t, "POST", "/v1/seller/products/"+archived.ID.String()+"/archive", bob.Token, nil).Want(t, http.StatusOK)
	reserved := mk(bob, "Steel clip lamp", 2000, "EUR", 1)
	s.do(t, "POST", "/internal/reservations", "", reserveBody(uuid.New(), 0, line{reserved.ID, 1})).Want(t, http.StatusCreated)

	tests := []struct {
		query string
		want  []string // in order
	}{
		{"sort=price_asc", []string{"Steel clip lamp", "Tin lantern", "Brass desk lamp", "Copper wall lamp", "Oak side table", "Paper floor lamp"}},
		{"sort=price_desc&currency=EUR", []string{"Paper floor lamp", "Oak side table", "Copper wall lamp", "Brass desk lamp", "Steel clip lamp"}},
		{"sort=newest", []string{"Steel clip lamp", "Tin lantern", "Copper wall lamp", "Oak side table", "Paper floor lamp", "Brass desk lamp"}},
		{"seller_id=" + alice.ID.String(), []string{"Oak side table", "Paper floor lamp", "Brass desk lamp"}},
		{"min_price=4500&max_price=9000&sort=price_asc", []string{"Brass desk lamp", "Copper wall lamp", "Oak side table"}},
		{"in_stock=true&sort=price_asc", []string{"Tin lantern", "Brass desk lamp", "Copper wall lamp", "Oak side table"}},
		{"currency=USD", []string{"Tin lantern"}},
		{"q=lamp&seller_id=" + bob.ID.String() + "&in_stock=true", []string{"Copper wall lamp", "Tin lantern"}}, // name match first
		{"q=lamp&currency=EUR&max_price=6000&sort=price_desc", []string{"Copper wall lamp", "Brass desk lamp", "Steel clip lamp"}},
		{"q=pendant", nil}, // archived
		{"seller_id=" + uuid.NewString(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, names(s.list(t, tt.query).Items)); diff != "" {
				t.Errorf("GET /v1/products?%s (-want +got):\n%s", tt.query, diff)
			}
		})
	}

	t.Run("archived readable by id", func(t *testing.T) {
		t.Parallel()
		var p product
		r := s.do(t, "GET", "/v1/products/"+archived.ID.String(), "", nil).Want(t, http.StatusOK)
		r.Decode(t, &p)
		if p.Status != "archived" || p.ArchivedAt == nil || r.Header.Get("ETag") != fmt.Sprintf(`"%d"`, p.Version) {
			t.Errorf("got %+v with ETag %q, want the archived product with its version as ETag", p, r.Header.Get("ETag"))
		}
		s.do(t, "GET", "/v1/products/"+uuid.NewString(), "", nil).WantProblem(t, http.StatusNotFound, "not-found")
	})
	t.Run("batch read for the aggregator", func(t *testing.T) {
		t.Parallel()
		missing := uuid.New()
		var list struct{ Items []product }
		s.do(t, "GET", "/internal/products?ids="+reserved.ID.String()+","+missing.String()+","+archived.ID.String(), "", nil).Want(t, http.StatusOK).Decode(t, &list)
		if got := names(list.Items); !slices.Equal(got, []string{"Steel clip lamp", "Glass pendant lamp"}) {
			t.Errorf("got %q, want the two existing products in the order asked", got)
		}
		if list.Items[0].Available != 0 {
			t.Errorf("got available %d for the reserved product, want 0", list.Items[0].Available)
		}
	})
}

// TestPaginationStable is acceptance 5: walking every page of each sort
// while products are being added (between the first pages, some sorting
// before and some after the cursor) returns no product twice and every
// product that existed when the walk began.
func TestPaginationStable(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	rng := rand.New(rand.NewPCG(4, 2))
	words := []string{"teapot", "teapot teapot", "big teapot", "teapot with lid", "small brown teapot"}
	add := func(tag string) product {
		w := words[rng.IntN(len(words))]
		desc := "teapot"
		if rng.IntN(2) == 0 {
			desc = "kettle"
		}
		return s.create(t, seller, newProduct{
			Name:        fmt.Sprintf("%s %s", w, tag),
			Description: desc,
			Price:       money{Amount: 500 + int64(rng.IntN(20))*100, Currency: "EUR"}, // many equal prices: ties broken by id
			OnHand:      1,
		})
	}
	original := map[uuid.UUID]bool{}
	for i := range 30 {
		original[add(fmt.Sprintf("original-%d", i)).ID] = true
	}
	for _, query := range []string{"sort=newest", "sort=price_asc", "sort=price_desc", "q=teapot", "q=teapot&sort=price_asc"} {
		t.Run(query, func(t *testing.T) {
			seen := map[uuid.UUID]int{}
			token, pages := "", 0
			for {
				q := query + "&limit=4"
				if token != "" {
					q += "&page_token=" + url.QueryEscape(token)
				}
				page := s.list(t, q)
				pages++
				for _, p := range page.Items {
					seen[p.ID]++
				}
				// Inserted while the client reads (for the first pages only:
				// inserts landing after the cursor would otherwise keep the
				// walk going).
				for i := range 3 * min(1, max(0, 7-pages)) {
					add(fmt.Sprintf("%s-page%d-%d", strings.ReplaceAll(query, "&", "+"), pages, i))
				}
				if page.NextPageToken == "" {
					break
				}
				token = page.NextPageToken
				if pages > 100 {
					t.Fatal("more than 100 pages: the walk does not end")
				}
			}
			for id, n := range seen {
				if n > 1 {
					t.Errorf("product %s returned %d times", id, n)
				}
			}
			for id := range original {
				if seen[id] == 0 {
					t.Errorf("pre-existing product %s skipped", id)
				}
			}
			t.Logf("%d pages, %d products seen (%d pre-existing)", pages, len(seen), len(original))
		})
	}
}
