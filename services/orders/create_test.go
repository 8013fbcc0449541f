package main

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
)

// TestIdempotentCreation is acceptance 2: the same checkout key with the
// same content gives back the one order (200, not a second order), even
// with the JSON written differently; the same key with other content is a
// 409; the key is the buyer's, so another buyer's equal key is another
// order.
func TestIdempotentCreation(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer, other := s.user(t, "buyer", true), s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	req := orderRequest(buyer, line{seller: seller, unitPrice: 1250, quantity: 2}, line{seller: seller, unitPrice: 99, quantity: 1})
	const key = "checkout-key-1"

	first := s.createOrder(t, key, req).Want(t, http.StatusCreated)
	created := first.order(t)
	if loc := first.Header.Get("Location"); loc != "/internal/orders/"+created.Id.String() {
		t.Errorf("got Location %q, want /internal/orders/%s", loc, created.Id)
	}
	replay := s.createOrder(t, key, req).Want(t, http.StatusOK).order(t)
	if replay.Id != created.Id {
		t.Fatalf("got order %s on replay, want %s", replay.Id, created.Id)
	}

	// The same content, written another way (key order, spacing, address
	// case and blanks that normalization removes).
	raw, _ := json.Marshal(req)
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	generic["shipping_address"].(map[string]any)["country"] = "fr"
	generic["shipping_address"].(map[string]any)["city"] = "  Paris "
	rewritten, _ := json.MarshalIndent(generic, "", "   ")
	if got := s.createOrder(t, key, string(rewritten)).Want(t, http.StatusOK).order(t); got.Id != created.Id {
		t.Errorf("got order %s for the same content written differently, want %s", got.Id, created.Id)
	}

	// Other content with the same key.
	changed := req
	changed.Lines = append([]httpapi.OrderLineInput(nil), req.Lines...)
	changed.Lines[0].Quantity = 3
	p := s.createOrder(t, key, changed).Want(t, http.StatusConflict).Problem(t)
	if !strings.HasSuffix(p.Type, "/idempotency-key-reused") || !strings.Contains(p.Detail, created.Id.String()) {
		t.Errorf("got problem %+v, want idempotency-key-reused naming order %s", p, created.Id)
	}
	moved := req
	moved.ShippingAddress.Line1 = "1 avenue Foch"
	s.createOrder(t, key, moved).Want(t, http.StatusConflict).Problem(t)

	// Another buyer's key is another buyer's.
	theirs := orderRequest(other, line{seller: seller, unitPrice: 1250, quantity: 2})
	if got := s.createOrder(t, key, theirs).Want(t, http.StatusCreated).order(t); got.Id == created.Id {
		t.Error("another buyer with the same key got the first buyer's order")
	}

	if n := s.count(t, `SELECT count(*) FROM orders WHERE buyer_id = $1`, buyer.ID); n != 1 {
		t.Errorf("got %d orders for the buyer, want 1", n)
	}
	if n := s.count(t, `SELECT count(*) FROM order_lines WHERE order_id = $1`, created.Id); n != 2 {
		t.Errorf("got %d lines, want 2", n)
	}
}

// TestOrderByKey: the checkout's lookup finds the order a buyer's key
// created, whatever its status since, without the cart it was made from;
// a key nobody used, and another buyer's key, are 404 alike.
func TestOrderByKey(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer, other := s.user(t, "buyer", true), s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	// A key with characters a query string must escape.
	const key = "checkout key/1?&=é"
	created := s.createOrder(t, key, orderRequest(buyer, line{seller: seller, unitPrice: 1250, quantity: 2})).Want(t, http.StatusCreated).order(t)
	byKey := func(buyer uuid.UUID, key string) response {
		q := url.Values{"buyer_id": {buyer.String()}, "idempotency_key": {key}}
		return s.do(t, "GET", "/internal/orders/by-key?"+q.Encode(), request{})
	}

	got := byKey(buyer.ID, key).Want(t, http.StatusOK).order(t)
	if got.Id != created.Id || got.Status != "pending" || len(got.Lines) != 1 || got.Total.Amount != 2500 {
		t.Errorf("got order %s %s with %d lines and total %d, want %s pending with 1 line and 2500", got.Id, got.Status, len(got.Lines), got.Total.Amount, created.Id)
	}
	// Found after it moved on, with its details.
	s.confirm(t, created.Id)
	got = byKey(buyer.ID, key).Want(t, http.StatusOK).order(t)
	if got.Id != created.Id || got.Status != "confirmed" || len(got.History) != 4 || len(got.Deliveries) != 1 {
		t.Errorf("got order %s %s with %d changes and %d deliveries, want %s confirmed with 4 and 1", got.Id, got.Status, len(got.History), len(got.Deliveries), created.Id)
	}

	tests := []struct {
		name  string
		buyer uuid.UUID
		key   string
	}{
		{"unused key", buyer.ID, "another-key"},
		{"key of another case", buyer.ID, strings.ToUpper(key)},
		{"another buyer's key", other.ID, key},
		{"unknown buyer", uuid.New(), key},
	}
	for _, tt := range tests {
		p := byKey(tt.buyer, tt.key).Want(t, http.StatusNotFound).Problem(t)
		if !strings.HasSuffix(p.Type, "/not-found") || strings.Contains(p.Detail, created.Id.String()) {
			t.Errorf("%s: got problem %+v, want not-found naming no order", tt.name, p)
		}
	}
}

// TestConcurrentDuplicateCreation is acceptance 2 under concurrency: 20
// requests with the same key at once create exactly one order; every other
// one gets that order back.
func TestConcurrentDuplicateCreation(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	req := orderRequest(buyer, line{seller: seller, unitPrice: 700, quantity: 3})
	const n = 20
	type result struct {
		status int
		id     uuid.UUID
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r := s.createOrder(t, "same-key", req)
			results[i].status = r.Status
			if r.Status < 300 {
				var o httpapi.Order
				if err := json.Unmarshal(r.Body, &o); err == nil {
					results[i].id = o.Id
				}
			}
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i, r := range results {
		switch r.status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("request %d: got status %d, want 201 or 200", i, r.status)
		}
		if r.id != results[0].id {
			t.Errorf("request %d: got order %s, want %s like request 0", i, r.id, results[0].id)
		}
	}
	if created != 1 {
		t.Errorf("got %d answers 201, want exactly 1", created)
	}
	if got := s.count(t, `SELECT count(*) FROM orders WHERE buyer_id = $1`, buyer.ID); got != 1 {
		t.Errorf("got %d orders in the database, want 1", got)
	}
	if got := s.count(t, `SELECT count(*) FROM order_transitions t JOIN orders o ON o.id = t.order_id WHERE o.buyer_id = $1`, buyer.ID); got != 1 {
		t.Errorf("got %d history entries, want the one creation", got)
	}
}

// TestTotals is acceptance 5: totals are computed by the service, exactly,
// in integer minor units, up to the largest int64; beyond it the order is
// refused rather than wrapped around; a caller's expected total that
// differs from the computed one is refused (422) and creates nothing.
func TestTotals(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	type want struct {
		status     int
		total      int64
		lineTotals []int64
		field      string // the field a 400 names
		problem    string // the problem type a 422 has
	}
	tests := []struct {
		name     string
		lines    []line
		expected *httpapi.Money
		want     want
	}{
		{"one line", []line{{seller, 1999, 3, "EUR"}}, nil,
			want{status: 201, total: 5997, lineTotals: []int64{5997}}},
		{"several lines", []line{{seller, 1999, 3, "EUR"}, {seller, 1, 1, "EUR"}, {seller, 250, 4, "EUR"}}, nil,
			want{status: 201, total: 6998, lineTotals: []int64{5997, 1, 1000}}},
		{"zero-decimal currency", []line{{seller, 1500, 2, "JPY"}}, &httpapi.Money{Amount: 3000, Currency: "JPY"},
			want{status: 201, total: 3000, lineTotals: []int64{3000}}},
		{"free line", []line{{seller, 0, 5, "EUR"}, {seller, 10, 1, "EUR"}}, &httpapi.Money{Amount: 10, Currency: "EUR"},
			want{status: 201, total: 10, lineTotals: []int64{0, 10}}},
		{"exactly the largest amount", []line{{seller, math.MaxInt64 / 7, 7, "EUR"}, {seller, math.MaxInt64 % 7, 1, "EUR"}}, nil,
			want{status: 201, total: math.MaxInt64, lineTotals: []int64{math.MaxInt64 / 7 * 7, math.MaxInt64 % 7}}},
		{"line beyond int64", []line{{seller, math.MaxInt64/7 + 1, 7, "EUR"}}, nil,
			want{status: 400, field: "lines[0].unit_price"}},
		{"sum beyond int64", []line{{seller, math.MaxInt64 / 2, 2, "EUR"}, {seller, 2, 1, "EUR"}}, nil,
			want{status: 400, field: "lines"}},
		{"expected total matches", []line{{seller, 333, 3, "EUR"}}, &httpapi.Money{Amount: 999, Currency: "EUR"},
			want{status: 201, total: 999, lineTotals: []int64{999}}},
		{"expected total off by one", []line{{seller, 333, 3, "EUR"}}, &httpapi.Money{Amount: 1000, Currency: "EUR"},
			want{status: 422, problem: "total-mismatch"}},
		{"expected total in a float's rounding", []line{{seller, 1, 3, "EUR"}, {seller, 10, 1, "EUR"}}, &httpapi.Money{Amount: 12, Currency: "EUR"},
			want{status: 422, problem: "total-mismatch"}},
		{"expected total in another currency", []line{{seller, 333, 3, "EUR"}}, &httpapi.Money{Amount: 999, Currency: "USD"},
			want{status: 422, problem: "total-mismatch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := orderRequest(buyer, tt.lines...)
			req.ExpectedTotal = tt.expected
			key := "totals-" + tt.name
			r := s.createOrder(t, key, req)
			if r.Status != tt.want.status {
				t.Fatalf("got status %d, want %d; body: %s", r.Status, tt.want.status, r.Body)
			}
			switch r.Status {
			case http.StatusCreated:
				o := r.order(t)
				if o.Total.Amount != tt.want.total || o.Total.Currency != tt.lines[0].currency {
					t.Errorf("got total %d %s, want %d %s", o.Total.Amount, o.Total.Currency, tt.want.total, tt.lines[0].currency)
				}
				for i, l := range o.Lines {
					if l.LineTotal != tt.want.lineTotals[i] || l.Currency != tt.lines[0].currency {
						t.Errorf("line %d: got line_total %d %s, want %d", i, l.LineTotal, l.Currency, tt.want.lineTotals[i])
					}
				}
			case http.StatusBadRequest:
				p := r.Problem(t)
				if len(p.Errors) != 1 || p.Errors[0].Field != tt.want.field {
					t.Errorf("got errors %+v, want one naming %s", p.Errors, tt.want.field)
				}
			case http.StatusUnprocessableEntity:
				p := r.Problem(t)
				if !strings.HasSuffix(p.Type, "/"+tt.want.problem) || !strings.Contains(p.Detail, "differs") {
					t.Errorf("got problem %+v, want %s saying the totals differ", p, tt.want.problem)
				}
			}
			if r.Status >= 400 {
				if n := s.count(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); n != 0 {
					t.Errorf("got %d orders after a refusal, want none", n)
				}
			}
		})
	}
}
