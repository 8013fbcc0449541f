package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestBadInput is acceptance 7: bad input is 400 problem+json naming each
// field at fault — negative prices, zero or negative quantities, unknown
// currencies, huge page sizes, malformed page tokens, and the rest.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 5})
	id := p.ID.String()
	// A real token of another list: well formed, but not for this query.
	var page productPage
	s.create(t, seller, newProduct{OnHand: 5})
	s.do(t, "GET", "/v1/products?sort=price_asc&limit=1", "", nil).Want(t, http.StatusOK).Decode(t, &page)
	if page.NextPageToken == "" {
		t.Fatal("no next page token to reuse")
	}
	priceToken := url.QueryEscape(page.NextPageToken)
	order := uuid.NewString()
	longName := strings.Repeat("n", 201)

	tests := []struct {
		name, method, path, body string
		fields                   []string
	}{
		{"negative price", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":-5,"currency":"EUR"}}`, []string{"price.amount"}},
		{"zero price", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":0,"currency":"EUR"}}`, []string{"price.amount"}},
		{"unknown currency", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":500,"currency":"XYZ"}}`, []string{"price.currency"}},
		{"lowercase currency", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":500,"currency":"eur"}}`, []string{"price.currency"}},
		{"every field wrong", "POST", "/v1/seller/products", `{"name":" ","price":{"amount":-1,"currency":""},"on_hand":-3}`, []string{"name", "on_hand", "price.amount", "price.currency"}},
		{"name too long", "POST", "/v1/seller/products", `{"name":"` + longName + `","price":{"amount":500,"currency":"EUR"}}`, []string{"name"}},
		{"unknown field", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":500,"currency":"EUR"},"colour":"red"}`, []string{"colour"}},
		{"price as text", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":"cheap","currency":"EUR"}}`, []string{"price.amount"}},
		{"patch negative price", "PATCH", "/v1/seller/products/" + id, `{"price":{"amount":-1,"currency":"EUR"}}`, []string{"price.amount"}},
		{"negative stock", "PUT", "/v1/seller/products/" + id + "/stock", `{"on_hand":-1}`, []string{"on_hand"}},
		{"zero delta", "POST", "/v1/seller/products/" + id + "/stock/adjust", `{"delta":0}`, []string{"delta"}},
		{"negative cart quantity", "PUT", "/v1/cart/lines/" + id, `{"quantity":-1}`, []string{"quantity"}},
		{"cart quantity over 99", "PUT", "/v1/cart/lines/" + id, `{"quantity":100}`, []string{"quantity"}},
		{"malformed product id", "PUT", "/v1/cart/lines/not-a-uuid", `{"quantity":1}`, []string{"product_id"}},
		{"zero reserve quantity", "POST", "/internal/reservations", `{"order_id":"` + order + `","lines":[{"product_id":"` + id + `","quantity":0}]}`, []string{"lines[0].quantity"}},
		{"negative reserve quantity", "POST", "/internal/reservations", `{"order_id":"` + order + `","lines":[{"product_id":"` + id + `","quantity":-2}]}`, []string{"lines[0].quantity"}},
		{"duplicate reserve line", "POST", "/internal/reservations", `{"order_id":"` + order + `","lines":[{"product_id":"` + id + `","quantity":1},{"product_id":"` + id + `","quantity":1}]}`, []string{"lines[1].product_id"}},
		{"no reserve lines", "POST", "/internal/reservations", `{"order_id":"` + order + `","lines":[]}`, []string{"lines"}},
		{"no order id", "POST", "/internal/reservations", `{"lines":[{"product_id":"` + id + `","quantity":1}]}`, []string{"order_id"}},
		{"zero ttl", "POST", "/internal/reservations", `{"order_id":"` + order + `","ttl_seconds":0,"lines":[{"product_id":"` + id + `","quantity":1}]}`, []string{"ttl_seconds"}},
		{"huge page size", "GET", "/v1/products?limit=1000", "", []string{"limit"}},
		{"zero page size", "GET", "/v1/products?limit=0", "", []string{"limit"}},
		{"overflowing page size", "GET", "/v1/products?limit=99999999999999999999", "", []string{"limit"}},
		{"malformed page token", "GET", "/v1/products?page_token=bm9wZQ", "", []string{"page_token"}},
		{"garbage page token", "GET", "/v1/products?page_token=%25%25%25", "", []string{"page_token"}},
		{"page token of another sort", "GET", "/v1/products?sort=newest&page_token=" + priceToken, "", []string{"page_token"}},
		{"page token of other filters", "GET", "/v1/products?sort=price_asc&currency=EUR&page_token=" + priceToken, "", []string{"page_token"}},
		{"negative min price", "GET", "/v1/products?min_price=-1", "", []string{"min_price"}},
		{"inverted price range", "GET", "/v1/products?min_price=500&max_price=100", "", []string{"max_price"}},
		{"unknown currency filter", "GET", "/v1/products?currency=XTS", "", []string{"currency"}},
		{"unknown sort", "GET", "/v1/products?sort=cheapest", "", []string{"sort"}},
		{"relevance without text", "GET", "/v1/products?sort=relevance", "", []string{"sort"}},
		{"in_stock not a boolean", "GET", "/v1/products?in_stock=maybe", "", []string{"in_stock"}},
		{"malformed seller id", "GET", "/v1/products?seller_id=42", "", []string{"seller_id"}},
		{"malformed id", "GET", "/v1/products/42", "", []string{"id"}},
		{"too many ids", "GET", "/internal/products?ids=" + strings.Repeat(id+",", 100) + id, "", []string{"ids"}},
		{"seller page size", "GET", "/v1/seller/products?limit=101", "", []string{"limit"}},
		{"seller page token", "GET", "/v1/seller/products?page_token=" + priceToken, "", []string{"page_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body any
			var headers []string
			if tt.body != "" {
				body = tt.body
			}
			if tt.method == "PATCH" {
				headers = []string{"If-Match", "*"}
			}
			r := s.do(t, tt.method, tt.path, seller.Token, body, headers...)
			pr := r.WantProblem(t, http.StatusBadRequest, "invalid-request")
			if got := fieldsOf(pr); !slices.Equal(got, tt.fields) {
				t.Errorf("got fields %q, want %q (detail %q)", got, tt.fields, pr.Detail)
			}
			for _, e := range pr.Errors {
				if e.Detail == "" {
					t.Errorf("field %s has no detail", e.Field)
				}
			}
		})
	}
	// Nothing of the refused requests was stored.
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM reservations) + (SELECT count(*) FROM cart_lines)`).Scan(&n); err != nil || n != 2 {
		t.Errorf("got %d rows (%v), want only the 2 products made for the test", n, err)
	}
}

// TestBodyLimits: the platform's strict decoding answers for the body as a
// whole: not JSON is 415, too large is 413.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	huge := fmt.Sprintf(`{"name":"Mug","description":%q,"price":{"amount":500,"currency":"EUR"}}`, strings.Repeat("x", 2<<20))
	s.do(t, "POST", "/v1/seller/products", seller.Token, huge).WantProblem(t, http.StatusRequestEntityTooLarge, "body-too-large")
	s.do(t, "POST", "/v1/seller/products", seller.Token, `{"name":"Mug"`).WantProblem(t, http.StatusBadRequest, "invalid-request")
	s.do(t, "POST", "/internal/reservations", "", nil).WantProblem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
	s.do(t, "DELETE", "/v1/products", "", nil).WantProblem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	s.do(t, "GET", "/v1/nothing-here", "", nil).WantProblem(t, http.StatusNotFound, "not-found")
}
