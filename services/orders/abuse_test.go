package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Issue 12's input cases at orders' boundary: impossible page tokens
// (case 8), text that is not text and required fields (cases 1 and 6),
// errors in plain words (case 11). Each is a 400 naming the field.

func fieldNames(p httpx.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	slices.Sort(out)
	return out
}

func TestOrdersRefuseBadInput(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	o := s.newOrder(t, buyer, line{seller: seller, unitPrice: 500, quantity: 1})
	id := o.Id.String()
	forged := func(at time.Time) string { return url.QueryEscape(httpx.EncodePageToken(at, uuid.New())) }
	minusOne := forged(time.UnixMicro(-1))
	yearOne := forged(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		field, detail             string
	}{
		{"my orders, token at −1 µs", "GET", "/v1/orders?page_token=" + minusOne, buyer.Token, nil, 400, "page_token", ""},
		{"my orders, token in year 1", "GET", "/v1/orders?page_token=" + yearOne, buyer.Token, nil, 400, "page_token", ""},
		{"my sales, token at −1 µs", "GET", "/v1/sales?page_token=" + minusOne, seller.Token, nil, 400, "page_token", ""},
		{"orders to recover, token in year 1", "GET", "/internal/orders?page_token=" + yearOne, "", nil, 400, "page_token", ""},
		{"flagged orders, token at −1 µs", "GET", "/internal/orders/flagged?page_token=" + minusOne, "", nil, 400, "page_token", ""},
		{"NUL in a filter", "GET", "/v1/orders?status=%00", buyer.Token, nil, 400, "status", ""},
		{"invalid UTF-8 in a filter", "GET", "/v1/sales?delivery_status=%ff%fe", seller.Token, nil, 400, "delivery_status", ""},
		{"NUL in a path", "GET", "/v1/orders/%00", buyer.Token, nil, 400, "id", ""},
		{"NUL in a JSON string", "POST", "/internal/orders/" + id + "/transitions", "", `{"to":"failed","reason":"gone\u0000"}`, 400, "reason", ""},
		{"transition without to", "POST", "/internal/orders/" + id + "/transitions", "", `{"reason":"why"}`, 400, "to", ""},
		{"transition with a null to", "POST", "/internal/orders/" + id + "/transitions", "", `{"to":null}`, 400, "to", ""},
		{"address without a city", "POST", "/v1/addresses", buyer.Token, `{"name":"Ada","line1":"1 rue A","postal_code":"75001","country":"FR"}`, 400, "city", ""},
		{"malformed order id", "GET", "/v1/orders/42", buyer.Token, nil, 400, "id", "id: must be a UUID"},
		{"unknown path", "GET", "/v1/nowhere", buyer.Token, nil, 404, "", "no route GET /v1/nowhere"},
		{"wrong method", "PUT", "/v1/orders", buyer.Token, nil, 405, "", "PUT is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.do(t, tt.method, tt.path, request{Token: tt.token, Body: tt.body}).Want(t, tt.status)
			p := r.Problem(t)
			if tt.field != "" {
				if got := fieldNames(p); !slices.Equal(got, []string{tt.field}) {
					t.Errorf("got fields %q, want [%s] (detail %q)", got, tt.field, p.Detail)
				}
			}
			if !strings.HasPrefix(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to start with %q", p.Detail, tt.detail)
			}
			for _, internal := range []string{"uuid.UUID", "unmarshal", "Invalid format", "SQLSTATE"} {
				if strings.Contains(p.Detail, internal) {
					t.Errorf("detail %q exposes Go's or PostgreSQL's words %q", p.Detail, internal)
				}
			}
		})
	}
	// The order did not move.
	got := s.do(t, "GET", "/internal/orders/"+id, request{}).Want(t, http.StatusOK).order(t)
	if got.Status != o.Status {
		t.Errorf("got status %q, want %q: a refused transition moved the order", got.Status, o.Status)
	}
}
