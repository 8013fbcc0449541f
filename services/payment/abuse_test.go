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

// Issue 12's input cases at payment's boundary: impossible page tokens
// (case 8), text that is not text and required fields (cases 1 and 6),
// errors in plain words (case 11). Each is a 400 naming the field, and
// nothing is charged.
func TestPaymentsRefuseBadInput(t *testing.T) {
	t.Parallel()
	s := startService(t)
	since := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	forged := func(at time.Time) string { return url.QueryEscape(httpx.EncodePageToken(at, uuid.New())) }
	withoutCurrency := payReq(newOrderID(), 500, "4242424242424242")
	delete(withoutCurrency, "currency")
	nullAmount := payReq(newOrderID(), 500, "4242424242424242")
	nullAmount["amount"] = nil
	noCVC := payReq(newOrderID(), 500, "4242424242424242")
	delete(noCVC["card"].(map[string]any), "cvc")

	tests := []struct {
		name, method, path string
		body               any
		status             int
		field, detail      string
	}{
		{"token at −1 µs", "GET", "/internal/payments?since=" + since + "&page_token=" + forged(time.UnixMicro(-1)), nil, 400, "page_token", ""},
		{"token in year 1", "GET", "/internal/payments?since=" + since + "&page_token=" + forged(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), nil, 400, "page_token", ""},
		{"token in 1999", "GET", "/internal/payments?since=" + since + "&page_token=" + forged(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)), nil, 400, "page_token", ""},
		{"NUL in a query parameter", "GET", "/internal/payments?since=" + since + "&x=%00", nil, 400, "x", ""},
		{"NUL in a path", "GET", "/internal/payments/%00", nil, 400, "id", ""},
		{"payment without currency", "POST", "/internal/payments", withoutCurrency, 400, "currency", ""},
		{"payment with a null amount", "POST", "/internal/payments", nullAmount, 400, "amount", ""},
		{"card without cvc", "POST", "/internal/payments", noCVC, 400, "card.cvc", ""},
		{"refund without amount", "POST", "/internal/payments/" + uuid.NewString() + "/refunds", map[string]any{}, 400, "amount", ""},
		{"malformed payment id", "GET", "/internal/payments/42", nil, 400, "id", "id: must be a UUID"},
		{"since not a time", "GET", "/internal/payments?since=yesterday", nil, 400, "since", "since: must be an RFC 3339 date-time"},
		{"unknown path", "GET", "/v1/nowhere", nil, 404, "", "no route GET /v1/nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(t, tt.method, tt.path, "key-"+uuid.NewString(), tt.body)
			p := r.WantProblem(t, tt.status, map[int]string{400: "invalid-request", 404: "not-found"}[tt.status])
			if tt.field != "" {
				var got []string
				for _, e := range p.Errors {
					got = append(got, e.Field)
				}
				if !slices.Equal(got, []string{tt.field}) {
					t.Errorf("got fields %q, want [%s] (detail %q)", got, tt.field, p.Detail)
				}
			}
			if !strings.HasPrefix(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to start with %q", p.Detail, tt.detail)
			}
			for _, internal := range []string{"uuid.UUID", "unmarshal", "Invalid format", "RFC3339 or"} {
				if strings.Contains(p.Detail, internal) {
					t.Errorf("detail %q exposes Go's words %q", p.Detail, internal)
				}
			}
		})
	}
	if c := s.counts(t); c.Charges != 0 {
		t.Errorf("got %d charges, want 0 for refused requests", c.Charges)
	}
	var list struct {
		Items []struct{} `json:"items"`
	}
	s.do(t, "GET", "/internal/payments?since="+since, "", nil).Want(t, http.StatusOK).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("got %d payments, want none", len(list.Items))
	}
}
