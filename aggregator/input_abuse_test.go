package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// TestInputAbuse is issue 12's input cases through the public API, on the
// real services: a client's bad input is a 400 naming the field, the data
// stays as it was, and no peer is blamed for it.
func TestInputAbuse(t *testing.T) {
	st := startStack(t)
	// A breaker that three failures open for a long time: if bad input
	// counted against inventory, the browses after it would all be 503.
	agg := st.startAggregator(t, st.aggPort, map[string]string{
		"AGGREGATOR_BREAKER_FAILURES": "3", "AGGREGATOR_BREAKER_OPEN_FOR": "60s",
	})
	// Runs before the aggregator stops: a connection the bursts dialed
	// but never used would hold its drain for seconds.
	t.Cleanup(abuseTransport.CloseIdleConnections)
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")
	for i := range 3 {
		newProduct(t, seller, fmt.Sprintf("Abused teapot %d", i), 1500, 5)
	}
	product := newProduct(t, seller, "Guarded teapot", 2500, 7)
	buyer.addToCart(t, product.Id, 2)

	t.Run("required fields", func(t *testing.T) { testRequiredFields(t, seller, buyer, product.Id) })
	t.Run("impossible page tokens", func(t *testing.T) { testImpossibleTokens(t, agg, seller, buyer) })
	t.Run("errors in plain words", func(t *testing.T) { testPlainWords(t, agg, buyer) })
	// Last: on a shop that counted bad input as inventory's failure, it
	// opens the breaker for everything after it.
	t.Run("NUL searches then browses", func(t *testing.T) { testNULSearches(t, agg) })
}

// answer is what send returns: the status, and the problem when the body
// is one.
type answer struct {
	status      int
	contentType string
	problem     problem
	body        string
}

// abuseTransport carries the raw requests, apart from the other tests'
// connections.
var abuseTransport = &http.Transport{MaxIdleConnsPerHost: 100}

// send is a raw request, safe from many goroutines, for what the test
// client refuses to send (paths that are no operation of shop.yaml) or
// must not send from a goroutine.
func send(method, rawURL, token, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return answer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: abuseTransport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b)}
	if a.contentType == httpx.ProblemContentType {
		if err := json.Unmarshal(b, &a.problem); err != nil {
			return a, fmt.Errorf("problem body %s: %w", b, err)
		}
	}
	return a, nil
}

func fields(p problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	slices.Sort(out)
	return out
}

// testNULSearches is case 1's acceptance: 100 parallel `q=%00` searches,
// then 100 ordinary browses: all 400, then all 200 (the breaker stays
// closed).
func testNULSearches(t *testing.T, agg *aggregator) {
	burst := func(path string) map[string]int {
		var (
			mu     sync.Mutex
			counts = map[string]int{}
			wg     sync.WaitGroup
		)
		for range 100 {
			wg.Go(func() {
				a, err := send("GET", agg.URL+path, "", "")
				key := fmt.Sprint(a.status)
				switch {
				case err != nil:
					key = err.Error()
				case a.status == http.StatusBadRequest && !slices.Equal(fields(a.problem), []string{"q"}):
					key = "400 naming " + strings.Join(fields(a.problem), ",")
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return counts
	}
	if got := burst("/v1/products?q=%00"); got["400"] != 100 {
		t.Errorf("q=%%00: got answers %v, want 100 × 400 naming q", got)
	}
	if got := burst("/v1/products?q=teapot"); got["200"] != 100 {
		t.Errorf("browses after them: got answers %v, want 100 × 200", got)
	}
	if got := burst("/v1/products"); got["200"] != 100 {
		t.Errorf("browses without a search: got answers %v, want 100 × 200", got)
	}
}

// testRequiredFields is case 6: `{}` and a null are a 400 naming the
// field, and the stock and the cart line are unchanged.
func testRequiredFields(t *testing.T, seller, buyer *shopper, id uuid.UUID) {
	for _, tc := range []struct {
		name, path string
		sh         *shopper
		body       any
		field      string
	}{
		{"stock {}", "/v1/seller/products/" + id.String() + "/stock", seller, map[string]any{}, "on_hand"},
		{"stock null", "/v1/seller/products/" + id.String() + "/stock", seller, map[string]any{"on_hand": nil}, "on_hand"},
		{"cart line {}", "/v1/cart/lines/" + id.String(), buyer, map[string]any{}, "quantity"},
		{"cart line null", "/v1/cart/lines/" + id.String(), buyer, map[string]any{"quantity": nil}, "quantity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.sh.c.do("PUT", tc.path, tc.body).problem(t, http.StatusBadRequest, "invalid-request")
			if got := fields(p); !slices.Equal(got, []string{tc.field}) {
				t.Errorf("got fields %q, want [%s] (detail %q)", got, tc.field, p.Detail)
			}
		})
	}
	if p := sellerProduct(t, seller, id); p.OnHand != 7 {
		t.Errorf("got stock %d, want 7: a refused request changed it", p.OnHand)
	}
	var cart httpapi.Cart
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != 2 {
		t.Errorf("got cart lines %+v, want the line of 2 still there", cart.Lines)
	}
}

// testImpossibleTokens is case 8 through the public API: tokens whose
// time no row can have are a 400 naming page_token.
func testImpossibleTokens(t *testing.T, agg *aggregator, seller, buyer *shopper) {
	var page httpapi.ProductPage
	seller.c.do("GET", "/v1/products?sort=newest&limit=1", nil).want(t, http.StatusOK).decode(t, &page)
	if page.NextPageToken == nil {
		t.Fatal("no next page token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(*page.NextPageToken)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), "|")
	forge := func(key string) string {
		p := slices.Clone(parts)
		p[1] = key
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(strings.Join(p, "|"))))
	}
	ordersToken := url.QueryEscape(httpx.EncodePageToken(time.UnixMicro(-1), uuid.New()))
	for _, tc := range []struct {
		name, path string
		sh         *shopper
	}{
		{"catalogue at −1", "/v1/products?sort=newest&page_token=" + forge("-1"), seller},
		{"catalogue at 2⁶³−1", "/v1/products?sort=newest&page_token=" + forge("9223372036854775807"), seller},
		{"catalogue at −2⁶³", "/v1/products?sort=newest&page_token=" + forge("-9223372036854775808"), seller},
		{"my products at −1", "/v1/seller/products?page_token=" + forge("-1"), seller},
		{"my orders at −1", "/v1/orders?page_token=" + ordersToken, buyer},
		{"my sales at −1", "/v1/sales?page_token=" + ordersToken, seller},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := send("GET", agg.URL+tc.path, tc.sh.c.token, "")
			if err != nil {
				t.Fatal(err)
			}
			if a.status != http.StatusBadRequest || !slices.Equal(fields(a.problem), []string{"page_token"}) {
				t.Errorf("got %d %s, want 400 naming page_token", a.status, a.body)
			}
		})
	}
}

// testPlainWords is case 11: invalid UTF-8 in q is a 400; parameters that
// do not bind are named in words without Go's; every error is
// problem+json.
func testPlainWords(t *testing.T, agg *aggregator, buyer *shopper) {
	for _, tc := range []struct {
		name, method, path string
		status             int
		detail             string
	}{
		{"q not UTF-8", "GET", "/v1/products?q=%ff%fe", 400, "q: must be valid UTF-8"},
		{"q with NUL", "GET", "/v1/products?q=a%00", 400, "q: must not contain NUL"},
		{"malformed order id", "GET", "/v1/orders/42", 400, "id: must be a UUID"},
		{"malformed product id", "GET", "/v1/products/not-a-uuid", 400, "id: must be a UUID"},
		{"limit not a number", "GET", "/v1/products?limit=ten", 400, "limit: must be an integer"},
		{"unknown path", "GET", "/v1/nowhere", 404, "no route GET /v1/nowhere"},
		{"wrong method", "DELETE", "/v1/products", 405, "DELETE is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := send(tc.method, agg.URL+tc.path, buyer.c.token, "")
			if err != nil {
				t.Fatal(err)
			}
			if a.status != tc.status || a.contentType != httpx.ProblemContentType {
				t.Fatalf("got %d %s %s, want %d problem+json", a.status, a.contentType, a.body, tc.status)
			}
			if !strings.HasPrefix(a.problem.Detail, tc.detail) {
				t.Errorf("got detail %q, want it to start with %q", a.problem.Detail, tc.detail)
			}
			for _, internal := range []string{"uuid.UUID", "unmarshal", "Invalid format", "strconv"} {
				if strings.Contains(a.problem.Detail, internal) {
					t.Errorf("detail %q exposes Go's words %q", a.problem.Detail, internal)
				}
			}
		})
	}
}
