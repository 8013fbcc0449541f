package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// paymentPage is a page of GET /internal/payments.
type paymentPage struct {
	Items         []payment `json:"items"`
	NextPageToken string    `json:"next_page_token"`
}

// TestWalkSince is the list the aggregator's reconciliation walks after a
// restore: every payment created since a time, oldest first, in pages that
// neither repeat nor skip one while payments are added during the walk,
// and nothing created before the time.
func TestWalkSince(t *testing.T) {
	t.Parallel()
	s := startService(t)
	var old, recent []string // payment ids, in creation order
	for i := range 7 {
		var p payment
		s.pay(t, fmt.Sprintf("walk-%d", i), payReq(newOrderID(), int64(1000+i), "4242424242424242"), http.StatusCreated).Decode(t, &p)
		if i < 2 {
			old = append(old, p.ID)
		} else {
			recent = append(recent, p.ID)
		}
	}
	// A refused card is a payment too (failed): the walk lists it.
	var declined payment
	r := s.do(t, "POST", "/internal/payments", "walk-declined", payReq(newOrderID(), 900, "4000000000000002"))
	r.WantProblem(t, http.StatusPaymentRequired, "card-declined")
	s.do(t, "GET", r.Header.Get("Location"), "", nil).Want(t, http.StatusOK).Decode(t, &declined)
	recent = append(recent, declined.ID)
	// The first two are two days old, as if made long before the restore.
	pgtest.Exec(t, s.DB, `UPDATE payments SET created_at = created_at - interval '48 hours' WHERE id = ANY($1::uuid[])`, old)
	// A refund is shown with its payment.
	s.do(t, "POST", "/internal/payments/"+recent[0]+"/refunds", "walk-refund", map[string]any{"amount": 500}).Want(t, http.StatusCreated)

	since := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339Nano)
	walk := func(t *testing.T, since string, limit int, during func(page int)) []payment {
		t.Helper()
		var got []payment
		token := ""
		for page := 0; ; page++ {
			if page > 20 {
				t.Fatal("the walk does not end")
			}
			q := url.Values{"since": {since}, "limit": {fmt.Sprint(limit)}}
			if token != "" {
				q.Set("page_token", token)
			}
			var pg paymentPage
			s.do(t, "GET", "/internal/payments?"+q.Encode(), "", nil).Want(t, http.StatusOK).Decode(t, &pg)
			if len(pg.Items) > limit {
				t.Fatalf("got %d items on a page of %d", len(pg.Items), limit)
			}
			got = append(got, pg.Items...)
			if during != nil {
				during(page)
			}
			if pg.NextPageToken == "" {
				return got
			}
			token = pg.NextPageToken
		}
	}
	ids := func(ps []payment) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.ID
		}
		return out
	}

	tests := []struct {
		name  string
		limit int
	}{
		{"one page", 100},
		{"pages of 2", 2},
		{"pages of 1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, since, tt.limit, nil)
			if !slices.Equal(ids(got), recent) {
				t.Errorf("got %v, want the recent payments %v, oldest first", ids(got), recent)
			}
			if got[0].AmountRefunded != 500 || len(got[0].Refunds) != 1 || got[0].Refunds[0].Amount != 500 {
				t.Errorf("got refunded %d with refunds %+v, want 500 in one refund", got[0].AmountRefunded, got[0].Refunds)
			}
			for _, p := range got[1:] {
				if len(p.Refunds) != 0 {
					t.Errorf("payment %s shows refunds %+v, want none", p.ID, p.Refunds)
				}
			}
		})
	}

	t.Run("payments added during the walk", func(t *testing.T) {
		var added []string
		got := walk(t, since, 3, func(page int) {
			var p payment
			s.pay(t, fmt.Sprintf("walk-during-%d", page), payReq(newOrderID(), 1200, "4242424242424242"), http.StatusCreated).Decode(t, &p)
			added = append(added, p.ID)
		})
		// Everything that was there, once, in order; what was added comes
		// after (all of it but what the last page's answer preceded).
		g := ids(got)
		if !slices.Equal(g[:len(recent)], recent) {
			t.Fatalf("got %v, want %v first", g, recent)
		}
		seen := map[string]bool{}
		for _, id := range g {
			if seen[id] {
				t.Errorf("payment %s served twice", id)
			}
			seen[id] = true
		}
		for _, id := range added[:len(added)-1] {
			if !seen[id] {
				t.Errorf("payment %s, added during the walk before its last page, was skipped", id)
			}
		}
	})

	t.Run("since the old ones", func(t *testing.T) {
		got := walk(t, time.Now().UTC().Add(-72*time.Hour).Format(time.RFC3339), 4, nil)
		if g := ids(got); len(g) < 2 || !slices.Equal(g[:2], old) {
			t.Errorf("got %v, want the two old payments first", g)
		}
	})
	t.Run("since now", func(t *testing.T) {
		if got := walk(t, time.Now().UTC().Add(time.Minute).Format(time.RFC3339), 10, nil); len(got) != 0 {
			t.Errorf("got %d payments created in the future", len(got))
		}
	})
}

// TestByOrders: up to 100 orders at once; an order without a payment is
// left out, so an empty list means none.
func TestByOrders(t *testing.T) {
	t.Parallel()
	s := startService(t)
	var orders []string
	for i := range 3 {
		o := newOrderID()
		s.pay(t, fmt.Sprintf("by-orders-%d", i), payReq(o, 700, "4242424242424242"), http.StatusCreated)
		orders = append(orders, o)
	}
	none := newOrderID()
	tests := []struct {
		name string
		ask  []string
		want []string // order ids, in the order of the answer
	}{
		{"one", orders[1:2], orders[1:2]},
		{"none", []string{none}, nil},
		{"in the order asked", []string{orders[2], none, orders[0], orders[1]}, []string{orders[2], orders[0], orders[1]}},
		{"asked twice", []string{orders[0], orders[0]}, orders[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pg paymentPage
			s.do(t, "GET", "/internal/payments?order_id="+strings.Join(tt.ask, ","), "", nil).Want(t, http.StatusOK).Decode(t, &pg)
			var got []string
			for _, p := range pg.Items {
				got = append(got, p.OrderID)
			}
			if !slices.Equal(got, tt.want) || pg.NextPageToken != "" {
				t.Errorf("got %v (next %q), want %v", got, pg.NextPageToken, tt.want)
			}
		})
	}
}

// TestListRefusals: the two ways of listing are not mixed, and bad
// parameters are 400 naming them.
func TestListRefusals(t *testing.T) {
	t.Parallel()
	s := startService(t)
	since := url.QueryEscape(time.Now().UTC().Format(time.RFC3339))
	many := make([]string, 101)
	for i := range many {
		many[i] = newOrderID()
	}
	tests := []struct {
		name, query, field string
	}{
		{"neither", "", "order_id"},
		{"both", "order_id=" + newOrderID() + "&since=" + since, "since"},
		{"order ids paged", "order_id=" + newOrderID() + "&limit=5", "order_id"},
		{"too many orders", "order_id=" + strings.Join(many, ","), "order_id"},
		{"not a uuid", "order_id=nope", "order_id"},
		{"not a time", "since=yesterday", "since"},
		{"limit 0", "since=" + since + "&limit=0", "limit"},
		{"limit 101", "since=" + since + "&limit=101", "limit"},
		{"foreign token", "since=" + since + "&page_token=bm90LWEtdG9rZW4", "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.do(t, "GET", "/internal/payments?"+tt.query, "", nil).WantProblem(t, http.StatusBadRequest, "invalid-request")
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if !slices.Contains(fields, tt.field) {
				t.Errorf("got fields %v (%s), want %q named", fields, p.Detail, tt.field)
			}
		})
	}
}
