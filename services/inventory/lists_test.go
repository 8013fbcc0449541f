package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// reservationPage is a page of GET /internal/reservations.
type reservationPage struct {
	Items         []reservation `json:"items"`
	NextPageToken string        `json:"next_page_token"`
}

// TestWalkReservationsSince is the list the aggregator's reconciliation
// walks after a restore: every reservation created since a time, whatever
// its status, oldest first, with its lines, in pages that neither repeat
// nor skip one while reservations are added during the walk.
func TestWalkReservationsSince(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	a := s.create(t, seller, newProduct{OnHand: 100})
	b := s.create(t, seller, newProduct{OnHand: 100})
	reserve := func(lines ...line) uuid.UUID {
		order := uuid.New()
		s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 600, lines...)).Want(t, http.StatusCreated)
		return order
	}
	var old, recent []uuid.UUID
	for range 2 {
		old = append(old, reserve(line{a.ID, 1}))
	}
	for i := range 6 {
		recent = append(recent, reserve(line{a.ID, 1}, line{b.ID, i + 1}))
	}
	// Every status is listed: committed, released, restocked, held.
	s.do(t, "POST", "/internal/reservations/"+recent[1].String()+"/commit", "", nil).Want(t, http.StatusOK)
	s.do(t, "POST", "/internal/reservations/"+recent[2].String()+"/release", "", nil).Want(t, http.StatusOK)
	s.do(t, "POST", "/internal/reservations/"+recent[3].String()+"/commit", "", nil).Want(t, http.StatusOK)
	s.do(t, "POST", "/internal/reservations/"+recent[3].String()+"/restock", "", nil).Want(t, http.StatusOK)
	wantStatus := []string{"held", "committed", "released", "restocked", "held", "held"}
	pgtest.Exec(t, s.DB, `UPDATE reservations SET created_at = created_at - interval '48 hours' WHERE order_id = ANY($1::uuid[])`, old)

	since := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339Nano)
	walk := func(t *testing.T, since string, limit int, during func()) []reservation {
		t.Helper()
		var got []reservation
		token := ""
		for page := 0; ; page++ {
			if page > 20 {
				t.Fatal("the walk does not end")
			}
			q := url.Values{"since": {since}, "limit": {fmt.Sprint(limit)}}
			if token != "" {
				q.Set("page_token", token)
			}
			var pg reservationPage
			s.do(t, "GET", "/internal/reservations?"+q.Encode(), "", nil).Want(t, http.StatusOK).Decode(t, &pg)
			if len(pg.Items) > limit {
				t.Fatalf("got %d items on a page of %d", len(pg.Items), limit)
			}
			got = append(got, pg.Items...)
			if during != nil {
				during()
			}
			if pg.NextPageToken == "" {
				return got
			}
			token = pg.NextPageToken
		}
	}
	orderIDs := func(list []reservation) []uuid.UUID {
		out := make([]uuid.UUID, len(list))
		for i, r := range list {
			out[i] = r.OrderID
		}
		return out
	}

	for _, limit := range []int{100, 4, 1} {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			got := walk(t, since, limit, nil)
			if !slices.Equal(orderIDs(got), recent) {
				t.Fatalf("got %v, want the recent reservations %v, oldest first", orderIDs(got), recent)
			}
			for i, r := range got {
				if r.Status != wantStatus[i] {
					t.Errorf("reservation %d: got %s, want %s", i, r.Status, wantStatus[i])
				}
				want := []line{{a.ID, 1}, {b.ID, i + 1}}
				slices.SortFunc(want, func(x, y line) int { return strings.Compare(x.ProductID.String(), y.ProductID.String()) })
				if !slices.Equal(r.Lines, want) {
					t.Errorf("reservation %d: got lines %v, want %v", i, r.Lines, want)
				}
			}
		})
	}
	t.Run("reservations added during the walk", func(t *testing.T) {
		var added []uuid.UUID
		got := walk(t, since, 2, func() { added = append(added, reserve(line{a.ID, 1})) })
		seen := map[uuid.UUID]bool{}
		for _, id := range orderIDs(got) {
			if seen[id] {
				t.Errorf("reservation of %s served twice", id)
			}
			seen[id] = true
		}
		for _, id := range append(recent, added[:len(added)-1]...) {
			if !seen[id] {
				t.Errorf("reservation of %s skipped", id)
			}
		}
	})
	t.Run("since before the old ones", func(t *testing.T) {
		got := walk(t, time.Now().UTC().Add(-72*time.Hour).Format(time.RFC3339), 3, nil)
		if g := orderIDs(got); len(g) < 2 || !slices.Equal(g[:2], old) {
			t.Errorf("got %v, want the two old reservations first", g)
		}
	})
}

// TestReservationsOf: up to 100 orders at once, whatever the status; an
// order without a reservation is left out.
func TestReservationsOf(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 10})
	var orders []uuid.UUID
	for range 3 {
		o := uuid.New()
		s.do(t, "POST", "/internal/reservations", "", reserveBody(o, 600, line{p.ID, 1})).Want(t, http.StatusCreated)
		orders = append(orders, o)
	}
	s.do(t, "POST", "/internal/reservations/"+orders[0].String()+"/release", "", nil).Want(t, http.StatusOK)
	none := uuid.New()
	join := func(ids ...uuid.UUID) string {
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = id.String()
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name string
		ask  []uuid.UUID
		want []uuid.UUID
	}{
		{"one", orders[1:2], orders[1:2]},
		{"none", []uuid.UUID{none}, nil},
		{"released too, in the order asked", []uuid.UUID{orders[2], none, orders[0]}, []uuid.UUID{orders[2], orders[0]}},
		{"asked twice", []uuid.UUID{orders[1], orders[1]}, orders[1:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pg reservationPage
			s.do(t, "GET", "/internal/reservations?order_id="+join(tt.ask...), "", nil).Want(t, http.StatusOK).Decode(t, &pg)
			var got []uuid.UUID
			for _, r := range pg.Items {
				got = append(got, r.OrderID)
			}
			if !slices.Equal(got, tt.want) || pg.NextPageToken != "" {
				t.Errorf("got %v (next %q), want %v", got, pg.NextPageToken, tt.want)
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		since := url.QueryEscape(time.Now().UTC().Format(time.RFC3339))
		many := make([]uuid.UUID, 101)
		for i := range many {
			many[i] = uuid.New()
		}
		for _, tc := range []struct{ name, query, field string }{
			{"neither", "", "order_id"},
			{"both", "order_id=" + none.String() + "&since=" + since, "since"},
			{"order ids paged", "order_id=" + none.String() + "&page_token=x", "order_id"},
			{"too many orders", "order_id=" + join(many...), "order_id"},
			{"not a uuid", "order_id=nope", "order_id"},
			{"not a time", "since=yesterday", "since"},
			{"limit 101", "since=" + since + "&limit=101", "limit"},
			{"foreign token", "since=" + since + "&page_token=bm90LWEtdG9rZW4", "page_token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pr := s.do(t, "GET", "/internal/reservations?"+tc.query, "", nil).WantProblem(t, http.StatusBadRequest, "invalid-request")
				if got := fieldsOf(pr); !slices.Contains(got, tc.field) {
					t.Errorf("got fields %v (%s), want %q named", got, pr.Detail, tc.field)
				}
			})
		}
	})
}
