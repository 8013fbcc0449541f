package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// TestAuthorizationMatrix is acceptance 4: every seller and cart endpoint,
// and the catalogue, asked by anonymous, a verified buyer, an unverified
// seller, the owner (seller A) and another seller (B). Another seller's
// product is 404 (as if it did not exist), buyers and unverified sellers
// are 403 on seller endpoints, anonymous is 401 except on the catalogue.
//
// Rows that change their product get a fresh one, and list only the actors
// they are about, the owner last (the one that succeeds).
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startService(t)
	const (
		anonymous  = "anonymous"
		buyer      = "buyer"
		unverified = "unverified seller"
		owner      = "owner (seller A)"
		other      = "other seller (B)"
	)
	actors := []string{anonymous, buyer, unverified, other, owner}
	sellerA := s.user(t, "seller", true)
	tokens := map[string]string{
		buyer:      s.user(t, "buyer", true).Token,
		unverified: s.user(t, "seller", false).Token,
		owner:      sellerA.Token,
		other:      s.user(t, "seller", true).Token,
	}
	shared := s.create(t, sellerA, newProduct{OnHand: 5})
	type statuses map[string]int
	sellerOnly := func(ownerStatus, otherStatus int) statuses {
		return statuses{anonymous: 401, buyer: 403, unverified: 403, other: otherStatus, owner: ownerStatus}
	}
	tests := []struct {
		method, path string // {id} is the target product
		body         string
		headers      []string
		fresh        bool
		want         statuses
	}{
		{"GET", "/v1/products", "", nil, false, statuses{anonymous: 200, buyer: 200, unverified: 200, other: 200, owner: 200}},
		{"GET", "/v1/products/{id}", "", nil, false, statuses{anonymous: 200, buyer: 200, unverified: 200, other: 200, owner: 200}},
		{"POST", "/v1/seller/products", `{"name":"Mug","price":{"amount":900,"currency":"EUR"}}`, nil, false, sellerOnly(201, 201)},
		{"GET", "/v1/seller/products", "", nil, false, sellerOnly(200, 200)},
		{"PATCH", "/v1/seller/products/{id}", `{"name":"Renamed"}`, []string{"If-Match", "*"}, true, sellerOnly(200, 404)},
		{"POST", "/v1/seller/products/{id}/archive", "", nil, true, sellerOnly(200, 404)},
		{"PUT", "/v1/seller/products/{id}/stock", `{"on_hand":7}`, nil, true, sellerOnly(200, 404)},
		{"POST", "/v1/seller/products/{id}/stock/adjust", `{"delta":2}`, nil, true, sellerOnly(200, 404)},
		{"PATCH", "/v1/seller/products/" + uuid.NewString(), `{"name":"Nobody"}`, []string{"If-Match", "*"}, false, sellerOnly(404, 404)},
		{"GET", "/v1/cart", "", nil, false, statuses{anonymous: 401, buyer: 200, unverified: 200, other: 200, owner: 200}},
		{"PUT", "/v1/cart/lines/{id}", `{"quantity":1}`, nil, false, statuses{anonymous: 401, buyer: 200, unverified: 200, other: 200, owner: 200}},
		{"DELETE", "/v1/cart/lines/{id}", "", nil, false, statuses{anonymous: 401, buyer: 204, unverified: 204, other: 204, owner: 204}},
		{"DELETE", "/v1/cart", "", nil, false, statuses{anonymous: 401, buyer: 204, unverified: 204, other: 204, owner: 204}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s %s", i, tt.method, tt.path), func(t *testing.T) {
			t.Parallel()
			target := shared
			if tt.fresh {
				target = s.create(t, sellerA, newProduct{OnHand: 5})
			}
			path := strings.ReplaceAll(tt.path, "{id}", target.ID.String())
			for _, actor := range actors {
				want, ok := tt.want[actor]
				if !ok {
					continue
				}
				var body any
				if tt.body != "" {
					body = tt.body
				}
				r := s.do(t, tt.method, path, tokens[actor], body, tt.headers...)
				if r.Status != want {
					t.Errorf("%s: got %d, want %d (%s)", actor, r.Status, want, r.Body)
					continue
				}
				if r.Status >= 400 {
					r.Problem(t)
				}
			}
			if tt.fresh { // B's attempts changed nothing before A's
				var p product
				s.do(t, "GET", "/v1/products/"+target.ID.String(), "", nil).Want(t, http.StatusOK).Decode(t, &p)
				if p.Version > 2 {
					t.Errorf("got version %d, want at most 2: another seller's request changed the product", p.Version)
				}
			}
		})
	}

	t.Run("own list only", func(t *testing.T) {
		t.Parallel()
		var page productPage
		s.do(t, "GET", "/v1/seller/products", tokens[other], nil).Want(t, http.StatusOK).Decode(t, &page)
		for _, p := range page.Items {
			if p.SellerID == sellerA.ID {
				t.Errorf("seller B's list holds seller A's product %s", p.ID)
			}
		}
	})
}

// TestIfMatch: updates need the ETag of the version they change; a stale
// one is 412, a missing one 400 precondition-required; of concurrent
// updates from the same ETag exactly one applies.
func TestIfMatch(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{Name: "Teapot", OnHand: 5})
	path := "/v1/seller/products/" + p.ID.String()
	if p.Version != 1 {
		t.Fatalf("got version %d for a new product, want 1", p.Version)
	}

	r := s.do(t, "PATCH", path, seller.Token, `{"name":"Blue teapot","price":{"amount":2500,"currency":"EUR"}}`, "If-Match", `"1"`).Want(t, http.StatusOK)
	var updated product
	r.Decode(t, &updated)
	if updated.Name != "Blue teapot" || updated.Price.Amount != 2500 || updated.Version != 2 || r.Header.Get("ETag") != `"2"` {
		t.Errorf("got %+v with ETag %q, want the new name and price at version 2", updated, r.Header.Get("ETag"))
	}

	tests := []struct {
		name, ifMatch string
		status        int
		slug          string
	}{
		{"stale", `"1"`, 412, "precondition-failed"},
		{"missing", "", 400, "precondition-required"},
		{"weak", `W/"2"`, 412, "precondition-failed"},
		{"unquoted", `2`, 400, "invalid-request"},
		{"list", `"1", "2"`, 400, "invalid-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.ifMatch != "" {
				headers = []string{"If-Match", tt.ifMatch}
			}
			p := s.do(t, "PATCH", path, seller.Token, `{"name":"Lost update"}`, headers...).WantProblem(t, tt.status, tt.slug)
			if tt.status == 400 && (len(p.Errors) != 1 || p.Errors[0].Field != "If-Match") {
				t.Errorf("got errors %+v, want one naming If-Match", p.Errors)
			}
		})
	}
	var current product
	s.do(t, "GET", "/v1/products/"+p.ID.String(), "", nil).Want(t, http.StatusOK).Decode(t, &current)
	if current.Name != "Blue teapot" || current.Version != 2 {
		t.Fatalf("got %q at version %d, want the refused updates to change nothing", current.Name, current.Version)
	}

	t.Run("concurrent updates from one ETag", func(t *testing.T) {
		var ok, stale atomic.Int64
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				r, err := s.send(t.Context(), "PATCH", path, seller.Token, fmt.Sprintf(`{"name":"Teapot %d"}`, i), "If-Match", `"2"`)
				switch {
				case err != nil:
					t.Error(err)
				case r.Status == 200:
					ok.Add(1)
				case r.Status == 412:
					stale.Add(1)
				default:
					t.Errorf("got %d: %s", r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || stale.Load() != 9 {
			t.Errorf("got %d applied and %d stale, want 1 and 9", ok.Load(), stale.Load())
		}
	})

	s.do(t, "PATCH", path, seller.Token, `{"description":"Any version"}`, "If-Match", "*").Want(t, http.StatusOK)
	s.do(t, "POST", path+"/archive", seller.Token, nil).Want(t, http.StatusOK)
	s.do(t, "POST", path+"/archive", seller.Token, nil).Want(t, http.StatusOK) // idempotent
	s.do(t, "PATCH", path, seller.Token, `{"name":"Too late"}`, "If-Match", "*").WantProblem(t, http.StatusConflict, "product-archived")
}

// TestStock: on_hand is set or adjusted atomically, never below what is
// reserved.
func TestStock(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 10})
	path := "/v1/seller/products/" + p.ID.String() + "/stock"
	s.do(t, "POST", "/internal/reservations", "", reserveBody(uuid.New(), 0, line{p.ID, 4})).Want(t, http.StatusCreated)

	tests := []struct {
		method, path, body string
		status             int
		onHand             int // after the request
	}{
		{"PUT", path, `{"on_hand":3}`, 409, 10},
		{"PUT", path, `{"on_hand":4}`, 200, 4},
		{"POST", path + "/adjust", `{"delta":-1}`, 409, 4},
		{"POST", path + "/adjust", `{"delta":6}`, 200, 10},
		{"POST", path + "/adjust", `{"delta":-6}`, 200, 4},
		{"POST", path + "/adjust", `{"delta":1000000000}`, 400, 4},
		{"PUT", path, `{"on_hand":20}`, 200, 20},
	}
	for i, tt := range tests {
		r := s.do(t, tt.method, tt.path, seller.Token, tt.body)
		if r.Status != tt.status {
			t.Fatalf("%d %s %s: got %d, want %d (%s)", i, tt.method, tt.body, r.Status, tt.status, r.Body)
		}
		if r.Status == 409 {
			if p := r.Problem(t); !strings.HasSuffix(p.Type, "/below-reserved") || len(p.Errors) != 1 {
				t.Errorf("%d: got problem %+v, want below-reserved naming the field", i, p)
			}
		}
		if onHand, reserved := s.stock(t, p.ID); onHand != tt.onHand || reserved != 4 {
			t.Errorf("%d %s %s: got on_hand %d reserved %d, want %d and 4", i, tt.method, tt.body, onHand, reserved, tt.onHand)
		}
	}

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if r, err := s.send(t.Context(), "POST", path+"/adjust", seller.Token, `{"delta":1}`); err != nil || r.Status != 200 {
				t.Errorf("adjust: %v %d %s", err, r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	var got product
	s.do(t, "POST", path+"/adjust", seller.Token, `{"delta":-20}`).Want(t, http.StatusOK).Decode(t, &got)
	if got.OnHand != 50 || got.Reserved != 4 || got.Available != 46 {
		t.Errorf("after 50 concurrent +1 and one -20 from 20: got on_hand %d reserved %d available %d, want 50, 4, 46", got.OnHand, got.Reserved, got.Available)
	}
}
