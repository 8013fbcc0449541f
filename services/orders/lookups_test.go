package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// TestOrdersByIDs: up to 100 orders at once, whatever their status, with
// their details, in the order asked; an unknown id is left out, so its
// absence means the order does not exist.
func TestOrdersByIDs(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	var ids []uuid.UUID
	for i := range 3 {
		ids = append(ids, s.newOrder(t, buyer, line{seller: seller, unitPrice: int64(500 + i), quantity: 2}).Id)
	}
	confirmed := s.confirm(t, ids[0])
	s.transition(t, ids[1], "failed", "card declined").Want(t, http.StatusOK)
	unknown := uuid.New()
	join := func(list ...uuid.UUID) string {
		parts := make([]string, len(list))
		for i, id := range list {
			parts[i] = id.String()
		}
		return strings.Join(parts, ",")
	}

	tests := []struct {
		name string
		ask  []uuid.UUID
		want []uuid.UUID
	}{
		{"one", ids[:1], ids[:1]},
		{"unknown", []uuid.UUID{unknown}, nil},
		{"every status, in the order asked", []uuid.UUID{ids[2], unknown, ids[0], ids[1]}, []uuid.UUID{ids[2], ids[0], ids[1]}},
		{"asked twice", []uuid.UUID{ids[1], ids[1]}, ids[1:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var list httpapi.OrderList
			s.do(t, "GET", "/internal/orders/by-ids?ids="+join(tt.ask...), request{}).Want(t, http.StatusOK).DecodeStrict(t, &list)
			var got []uuid.UUID
			for _, o := range list.Items {
				got = append(got, o.Id)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("details", func(t *testing.T) {
		var list httpapi.OrderList
		s.do(t, "GET", "/internal/orders/by-ids?ids="+ids[0].String(), request{}).Want(t, http.StatusOK).DecodeStrict(t, &list)
		if diff := cmp.Diff([]httpapi.Order{confirmed}, list.Items); diff != "" {
			t.Errorf("the order read in a batch differs from the one confirmed (-want +got):\n%s", diff)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		many := make([]uuid.UUID, 101)
		for i := range many {
			many[i] = uuid.New()
		}
		for _, q := range []string{"", "ids=", "ids=" + join(many...), "ids=nope"} {
			r := s.do(t, "GET", "/internal/orders/by-ids?"+q, request{}).Want(t, http.StatusBadRequest)
			p := r.Problem(t)
			if len(p.Errors) == 0 || p.Errors[0].Field != "ids" {
				t.Errorf("?%.40s: got errors %+v, want ids named", q, p.Errors)
			}
		}
	})
}

// TestChangedSince: the recovery list restricted to the orders whose
// status changed since a time — the reconciliation's walk of one status
// over the recent past — still respects older_than and pages.
func TestChangedSince(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	var ids []uuid.UUID
	for range 6 {
		o := s.newOrder(t, buyer, line{seller: seller, unitPrice: 900, quantity: 1})
		s.confirm(t, o.Id)
		ids = append(ids, o.Id)
	}
	// ids[0] and ids[1] were confirmed two days ago, ids[2..4] ten minutes
	// ago, oldest first; ids[5] just now.
	pgtest.Exec(t, s.DB, `UPDATE orders SET status_changed_at = now() - interval '48 hours' - (id = $2)::int * interval '1 second' WHERE id = ANY($1::uuid[])`, ids[:2], ids[0])
	for i, id := range ids[2:5] {
		pgtest.Exec(t, s.DB, `UPDATE orders SET status_changed_at = now() - interval '10 minutes' + $2::int * interval '1 second' WHERE id = $1`, id, i)
	}
	day := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	week := time.Now().UTC().Add(-7 * 24 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name  string
		query url.Values
		want  []uuid.UUID
	}{
		{"the last day, older than 5m", url.Values{"status": {"confirmed"}, "changed_since": {day}, "older_than": {"5m"}}, ids[2:5]},
		{"the last day, by 1", url.Values{"status": {"confirmed"}, "changed_since": {day}, "older_than": {"5m"}, "limit": {"1"}}, ids[2:5]},
		{"the last day, any age", url.Values{"status": {"confirmed"}, "changed_since": {day}}, ids[2:]},
		{"the last week", url.Values{"status": {"confirmed"}, "changed_since": {week}, "older_than": {"5m"}, "limit": {"2"}}, ids[:5]},
		{"another status", url.Values{"status": {"paid"}, "changed_since": {week}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uuid.UUID
			q := tt.query
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("the walk does not end")
				}
				var p httpapi.OrderPage
				s.do(t, "GET", "/internal/orders?"+q.Encode(), request{}).Want(t, http.StatusOK).DecodeStrict(t, &p)
				for _, o := range p.Items {
					got = append(got, o.Id)
				}
				if p.NextPageToken == nil {
					break
				}
				q.Set("page_token", *p.NextPageToken)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	r := s.do(t, "GET", "/internal/orders?changed_since=yesterday", request{}).Want(t, http.StatusBadRequest)
	if p := r.Problem(t); !slices.ContainsFunc(p.Errors, func(e apierr.FieldError) bool { return e.Field == "changed_since" }) {
		t.Errorf("got %+v, want changed_since named", p.Errors)
	}
}
