package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// TestAddressBook: addresses are saved normalized (trimmed, country in
// capitals), listed oldest first, deleted; the book is bounded, also when
// the last places are taken concurrently.
func TestAddressBook(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("ORDERS_MAX_ADDRESSES", "5"))
	u := s.user(t, "buyer", true)
	add := func(u user, name string) response {
		return s.do(t, "POST", "/v1/addresses", request{Token: u.Token, Body: map[string]string{
			"name": "  " + name + " ", "line1": "1 rue A", "line2": "", "city": "Paris", "postal_code": " 75001", "country": "fr",
		}})
	}
	var first httpapi.SavedAddress
	add(u, "Home").Want(t, http.StatusCreated).DecodeStrict(t, &first)
	want := httpapi.SavedAddress{Id: first.Id, CreatedAt: first.CreatedAt, Name: "Home", Line1: "1 rue A", City: "Paris", PostalCode: "75001", Country: "FR"}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("saved address (-want +got):\n%s", diff)
	}
	add(u, "Work").Want(t, http.StatusCreated)

	// Four concurrent adds for the three places left: three succeed, one
	// finds the book full.
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Go(func() { statuses[i] = add(u, fmt.Sprintf("Extra %d", i)).Status })
	}
	wg.Wait()
	created, full := 0, 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			full++
		}
	}
	if created != 3 || full != 1 {
		t.Errorf("got statuses %v for four adds with three places left, want three 201 and one 409", statuses)
	}
	add(u, "One too many").Want(t, http.StatusConflict).Problem(t)

	var list httpapi.AddressList
	s.do(t, "GET", "/v1/addresses", request{Token: u.Token}).Want(t, http.StatusOK).DecodeStrict(t, &list)
	if len(list.Items) != 5 || list.Items[0].Name != "Home" || list.Items[1].Name != "Work" {
		t.Fatalf("got %d addresses starting %+v, want 5, oldest first", len(list.Items), list.Items[:min(2, len(list.Items))])
	}
	s.do(t, "DELETE", "/v1/addresses/"+first.Id.String(), request{Token: u.Token}).Want(t, http.StatusNoContent)
	s.do(t, "DELETE", "/v1/addresses/"+first.Id.String(), request{Token: u.Token}).Want(t, http.StatusNotFound).Problem(t)
	add(u, "Back").Want(t, http.StatusCreated)

	// Another user's book is their own.
	other := s.user(t, "buyer", true)
	s.do(t, "GET", "/v1/addresses", request{Token: other.Token}).Want(t, http.StatusOK).DecodeStrict(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("got %d addresses for a new user, want none", len(list.Items))
	}
}

// TestLists: a buyer's orders come newest first, page by page, without
// duplicates or gaps, filtered by status; a seller's sales likewise,
// filtered by delivery status; the recovery list holds the orders stuck
// in a status for longer than the age asked, the longest-stuck first.
func TestLists(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	var ids []uuid.UUID // oldest first
	for i := range 7 {
		o := s.newOrder(t, buyer, line{seller: seller, unitPrice: int64(100 + i), quantity: 1})
		ids = append(ids, o.Id)
	}
	for _, id := range ids[:4] {
		s.confirm(t, id)
	}
	s.transition(t, ids[4], "failed", "card declined").Want(t, http.StatusOK)
	// ids[5] and ids[6] stay pending.

	collect := func(path string, query url.Values, token string, ids func([]byte) ([]uuid.UUID, *string)) (got []uuid.UUID, pages int) {
		t.Helper()
		for {
			r := s.do(t, "GET", path+"?"+query.Encode(), request{Token: token}).Want(t, http.StatusOK)
			items, next := ids(r.Body)
			got = append(got, items...)
			pages++
			if next == nil {
				return got, pages
			}
			query.Set("page_token", *next)
		}
	}
	orderIDs := func(body []byte) ([]uuid.UUID, *string) {
		var p httpapi.OrderPage
		servicetest.Response{Body: body}.DecodeStrict(t, &p)
		var out []uuid.UUID
		for _, o := range p.Items {
			out = append(out, o.Id)
		}
		return out, p.NextPageToken
	}
	saleIDs := func(body []byte) ([]uuid.UUID, *string) {
		var p httpapi.SalePage
		servicetest.Response{Body: body}.DecodeStrict(t, &p)
		var out []uuid.UUID
		for _, sale := range p.Items {
			out = append(out, sale.OrderId)
		}
		return out, p.NextPageToken
	}
	newestFirst := func(list ...uuid.UUID) []uuid.UUID {
		out := make([]uuid.UUID, len(list))
		for i, id := range list {
			out[len(list)-1-i] = id
		}
		return out
	}

	// The sale of ids[1] moves on, so that a delivery filter has something
	// to find.
	o1 := s.do(t, "GET", "/internal/orders/"+ids[1].String(), request{}).Want(t, http.StatusOK).order(t)
	s.moveDelivery(t, seller, o1.Deliveries[0].Id, "shipped", "GLS", "GLS42").Want(t, http.StatusOK)

	tests := []struct {
		name      string
		path      string
		query     url.Values
		token     string
		ids       func([]byte) ([]uuid.UUID, *string)
		want      []uuid.UUID
		wantPages int
	}{
		{"my orders by 3", "/v1/orders", url.Values{"limit": {"3"}}, buyer.Token, orderIDs, newestFirst(ids...), 3},
		{"my orders, one page", "/v1/orders", url.Values{}, buyer.Token, orderIDs, newestFirst(ids...), 1},
		{"my confirmed orders by 2", "/v1/orders", url.Values{"limit": {"2"}, "status": {"confirmed"}}, buyer.Token, orderIDs, newestFirst(ids[:4]...), 2},
		{"my failed orders", "/v1/orders", url.Values{"status": {"failed"}}, buyer.Token, orderIDs, []uuid.UUID{ids[4]}, 1},
		{"my sales by 3", "/v1/sales", url.Values{"limit": {"3"}}, seller.Token, saleIDs, newestFirst(ids[:4]...), 2},
		{"my sales to prepare", "/v1/sales", url.Values{"delivery_status": {"preparing"}}, seller.Token, saleIDs, newestFirst(ids[0], ids[2], ids[3]), 1},
		{"my shipped sales", "/v1/sales", url.Values{"delivery_status": {"shipped"}}, seller.Token, saleIDs, []uuid.UUID{ids[1]}, 1},
		{"stuck now, by 1", "/internal/orders", url.Values{"limit": {"1"}}, "", orderIDs, ids[5:], 2},
		{"stuck pending", "/internal/orders", url.Values{"status": {"pending"}, "older_than": {"0s"}}, "", orderIDs, ids[5:], 1},
		{"stuck for an hour", "/internal/orders", url.Values{"older_than": {"1h"}}, "", orderIDs, nil, 1},
	}
	for _, tt := range tests {
		got, pages := collect(tt.path, tt.query, tt.token, tt.ids)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: GET %s?%s (-want +got):\n%s", tt.name, tt.path, tt.query.Encode(), diff)
		}
		if pages != tt.wantPages {
			t.Errorf("%s: got %d pages, want %d", tt.name, pages, tt.wantPages)
		}
	}

	// Age the pending orders: ids[6] has been pending for two minutes,
	// ids[5] for one; the recovery loop asking for a minute sees both,
	// the longest-stuck first, and for 90 seconds only the oldest.
	for i, age := range map[int]string{5: "1 minute", 6: "2 minutes"} {
		if _, err := s.DB.Exec(context.Background(), `UPDATE orders SET status_changed_at = now() - $2::interval WHERE id = $1`, ids[i], age); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		olderThan string
		want      []uuid.UUID
	}{
		{"60s", []uuid.UUID{ids[6], ids[5]}},
		{"90s", []uuid.UUID{ids[6]}},
		{"3m", nil},
	} {
		got, _ := collect("/internal/orders", url.Values{"older_than": {tt.olderThan}}, "", orderIDs)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("older_than=%s (-want +got):\n%s", tt.olderThan, diff)
		}
	}
}

// TestConfiguration: a bad configuration stops the service at start with
// an error naming the variable, before it touches anything.
func TestConfiguration(t *testing.T) {
	t.Parallel()
	tests := map[string]map[string]string{
		"ORDERS_MAX_ADDRESSES": {"ORDERS_MAX_ADDRESSES": "0"},
		"ORDERS_ORDER_URL":     {"ORDERS_ORDER_URL": "orders"},
		"DATABASE_URL":         {},
		"MAIL_FROM_EMAIL":      {"MAIL_FROM_EMAIL": "nobody"},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			full := map[string]string{
				"DATABASE_URL": "postgres://127.0.0.1:1/none", "MAILJET_API_KEY_PUBLIC": "p", "MAILJET_API_KEY_PRIVATE": "k",
				"MAIL_FROM_EMAIL": "orders@example.com",
			}
			for k, v := range env {
				full[k] = v
			}
			if name == "DATABASE_URL" {
				delete(full, "DATABASE_URL")
			}
			err := run(context.Background(), logging.NewNull(), config.MapLookup(full))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("got %v, want an error naming %s", err, name)
			}
		})
	}
}
