package main

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Issue 12: input that once reached PostgreSQL (a 500, counted by the
// aggregator as inventory's failure), destroyed data, or was answered in Go's
// words. Each is a 400 naming the field, and the data stays as it was.

// TestTextInputIsText is case 1 (and 11's q): a NUL or a byte that is not
// UTF-8 in a query parameter, a path parameter or a JSON string is refused
// at the boundary, before the database sees it.
func TestTextInputIsText(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 5})
	tests := []struct {
		name, method, path, body string
		field                    string
	}{
		{"NUL in a search", "GET", "/v1/products?q=%00", "", "q"},
		{"NUL inside a search", "GET", "/v1/products?q=mug%00cup", "", "q"},
		{"invalid UTF-8 in a search", "GET", "/v1/products?q=%ff%fe", "", "q"},
		{"NUL in a currency filter", "GET", "/v1/products?currency=EU%00", "", "currency"},
		{"NUL in an unknown parameter", "GET", "/v1/products?utm=%00", "", "utm"},
		{"NUL in a path parameter", "GET", "/v1/products/%00", "", "id"},
		{"invalid UTF-8 in a path parameter", "GET", "/v1/products/%ff", "", "id"},
		{"NUL in a product name", "POST", "/v1/seller/products", `{"name":"Mug\u0000","price":{"amount":500,"currency":"EUR"}}`, "name"},
		{"NUL in a currency", "POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":500,"currency":"EU\u0000"}}`, "price.currency"},
		{"invalid UTF-8 in a description", "POST", "/v1/seller/products", "{\"name\":\"Mug\",\"description\":\"caf\xe9\",\"price\":{\"amount\":500,\"currency\":\"EUR\"}}", "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body any
			if tt.body != "" {
				body = tt.body
			}
			pr := s.do(t, tt.method, tt.path, seller.Token, body).WantProblem(t, http.StatusBadRequest, "invalid-request")
			if got := fieldsOf(pr); !slices.Equal(got, []string{tt.field}) {
				t.Errorf("got fields %q, want [%s] (detail %q)", got, tt.field, pr.Detail)
			}
		})
	}
	// Still one product, and the catalogue still answers.
	var page productPage
	s.do(t, "GET", "/v1/products?q=product", "", nil).Want(t, http.StatusOK).Decode(t, &page)
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM products`).Scan(&n); err != nil || n != 1 {
		t.Errorf("got %d products (%v), want the 1 made for the test (%s)", n, err, p.ID)
	}
}

// TestRequiredFieldsAreRequired is case 6: a missing or null required
// field is a 400 naming it, never its zero value (a stock of 0, a cart
// line removed).
func TestRequiredFieldsAreRequired(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	buyer := s.user(t, "buyer", true)
	p := s.create(t, seller, newProduct{OnHand: 7})
	s.do(t, "PUT", "/v1/cart/lines/"+p.ID.String(), buyer.Token, `{"quantity":3}`).Want(t, http.StatusOK)
	tests := []struct {
		name, method, path, token, body string
		field                           string
	}{
		{"stock without on_hand", "PUT", "/v1/seller/products/" + p.ID.String() + "/stock", seller.Token, `{}`, "on_hand"},
		{"stock with a null on_hand", "PUT", "/v1/seller/products/" + p.ID.String() + "/stock", seller.Token, `{"on_hand":null}`, "on_hand"},
		{"adjustment without delta", "POST", "/v1/seller/products/" + p.ID.String() + "/stock/adjust", seller.Token, `{}`, "delta"},
		{"cart line without quantity", "PUT", "/v1/cart/lines/" + p.ID.String(), buyer.Token, `{}`, "quantity"},
		{"cart line with a null quantity", "PUT", "/v1/cart/lines/" + p.ID.String(), buyer.Token, `{"quantity":null}`, "quantity"},
		{"product without a price", "POST", "/v1/seller/products", seller.Token, `{"name":"Mug"}`, "price"},
		{"price without a currency", "POST", "/v1/seller/products", seller.Token, `{"name":"Mug","price":{"amount":500}}`, "price.currency"},
		{"reservation line without quantity", "POST", "/internal/reservations", "", `{"order_id":"` + uuid.NewString() + `","lines":[{"product_id":"` + p.ID.String() + `"}]}`, "lines[0].quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pr := s.do(t, tt.method, tt.path, tt.token, tt.body).WantProblem(t, http.StatusBadRequest, "invalid-request")
			if got := fieldsOf(pr); !slices.Equal(got, []string{tt.field}) {
				t.Errorf("got fields %q, want [%s] (detail %q)", got, tt.field, pr.Detail)
			}
		})
	}
	if onHand, reserved := s.stock(t, p.ID); onHand != 7 || reserved != 0 {
		t.Errorf("got stock %d (reserved %d), want 7 (0): a refused request changed it", onHand, reserved)
	}
	var c cart
	s.do(t, "GET", "/v1/cart", buyer.Token, nil).Want(t, http.StatusOK).Decode(t, &c)
	if len(c.Lines) != 1 || c.Lines[0].Quantity != 3 {
		t.Errorf("got cart lines %+v, want the line of 3 still there", c.Lines)
	}
}

// TestImpossiblePageTokens is case 8: a page token whose time no row can
// have (−1, ±2⁶³ µs, year 1) is a 400 naming page_token in every list.
func TestImpossiblePageTokens(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	for range 2 {
		s.create(t, seller, newProduct{OnHand: 1})
	}
	// Real tokens of each list, whose time is then replaced.
	var page productPage
	s.do(t, "GET", "/v1/products?sort=newest&limit=1", "", nil).Want(t, http.StatusOK).Decode(t, &page)
	catalogue := page.NextPageToken
	s.do(t, "GET", "/v1/seller/products?limit=1", seller.Token, nil).Want(t, http.StatusOK).Decode(t, &page)
	mine := page.NextPageToken
	if catalogue == "" || mine == "" {
		t.Fatalf("no next page tokens (%q, %q)", catalogue, mine)
	}
	order := uuid.New()
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 0, line{ProductID: page.Items[0].ID, Quantity: 1})).Want(t, http.StatusCreated)

	for _, us := range []int64{-1, math.MaxInt64, math.MinInt64, 0} {
		for _, list := range []struct{ path, token string }{
			{"/v1/products?sort=newest&page_token=", catalogue},
			{"/v1/seller/products?page_token=", mine},
		} {
			t.Run(fmt.Sprintf("%s at %d µs", list.path, us), func(t *testing.T) {
				r := s.do(t, "GET", list.path+url.QueryEscape(withMicros(t, list.token, us)), seller.Token, nil)
				pr := r.WantProblem(t, http.StatusBadRequest, "invalid-request")
				if got := fieldsOf(pr); !slices.Equal(got, []string{"page_token"}) {
					t.Errorf("got fields %q, want [page_token]", got)
				}
			})
		}
	}
	for _, at := range []time.Time{time.UnixMicro(-1), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		t.Run("reservations at "+at.String(), func(t *testing.T) {
			token := httpx.EncodePageToken(at, order)
			r := s.do(t, "GET", "/internal/reservations?since="+since+"&page_token="+url.QueryEscape(token), "", nil)
			pr := r.WantProblem(t, http.StatusBadRequest, "invalid-request")
			if got := fieldsOf(pr); !slices.Equal(got, []string{"page_token"}) {
				t.Errorf("got fields %q, want [page_token]", got)
			}
		})
	}
	// The real tokens still work.
	s.do(t, "GET", "/v1/products?sort=newest&page_token="+url.QueryEscape(catalogue), "", nil).Want(t, http.StatusOK)
	s.do(t, "GET", "/v1/seller/products?page_token="+url.QueryEscape(mine), seller.Token, nil).Want(t, http.StatusOK)
}

// withMicros is token (a newest-first catalogue token) with its time
// replaced by us microseconds since 1970, as a forger would write it.
func withMicros(t *testing.T, token string, us int64) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 {
		t.Fatalf("token %q has %d parts, want 4", raw, len(parts))
	}
	parts[1] = strconv.FormatInt(us, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "|")))
}

// TestErrorsInPlainWords is case 11: a parameter that does not bind is
// named in words (no Go type), and the router's own 404 and 405 are
// problem+json.
func TestErrorsInPlainWords(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	tests := []struct {
		name, method, path string
		status             int
		slug, detail       string
	}{
		{"malformed product id", "GET", "/v1/products/42", 400, "invalid-request", "id: must be a UUID"},
		{"malformed order id", "GET", "/internal/reservations/nope", 400, "invalid-request", "order_id: must be a UUID"},
		{"malformed seller filter", "GET", "/v1/products?seller_id=x", 400, "invalid-request", "seller_id: must be a UUID"},
		{"malformed ids", "GET", "/internal/products?ids=a,b", 400, "invalid-request", "ids: must be a UUID"},
		{"limit not a number", "GET", "/v1/products?limit=ten", 400, "invalid-request", "limit: must be an integer"},
		{"limit out of range", "GET", "/v1/products?limit=99999999999999999999", 400, "invalid-request", "limit: is out of range"},
		{"in_stock not a boolean", "GET", "/v1/products?in_stock=maybe", 400, "invalid-request", "in_stock: must be true or false"},
		{"since not a time", "GET", "/internal/reservations?since=yesterday", 400, "invalid-request", "since: must be an RFC 3339 date-time"},
		{"unknown path", "GET", "/v1/nowhere", 404, "not-found", "no route GET /v1/nowhere"},
		{"wrong method", "DELETE", "/v1/products", 405, "method-not-allowed", "DELETE is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pr := s.do(t, tt.method, tt.path, seller.Token, nil).WantProblem(t, tt.status, tt.slug)
			if !strings.HasPrefix(pr.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to start with %q", pr.Detail, tt.detail)
			}
			for _, internal := range []string{"uuid.UUID", "unmarshal", "Invalid format", "strconv", "ParseBool", "RFC3339 or"} {
				if strings.Contains(pr.Detail, internal) {
					t.Errorf("detail %q exposes Go's words %q", pr.Detail, internal)
				}
			}
		})
	}
}
