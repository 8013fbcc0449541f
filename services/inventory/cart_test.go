package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// TestCartFlags: a cart shows each line at the product's current price
// with its availability; lines whose product was archived, sold out or is
// short are flagged, not dropped, and left out of the totals, which are
// per currency.
func TestCartFlags(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	buyer := s.user(t, "buyer", true)
	mugs := s.create(t, seller, newProduct{Name: "Mug", Price: money{1200, "EUR"}, OnHand: 10})
	bowls := s.create(t, seller, newProduct{Name: "Bowl", Price: money{2000, "EUR"}, OnHand: 2})
	vases := s.create(t, seller, newProduct{Name: "Vase", Price: money{5000, "EUR"}, OnHand: 1})
	lamps := s.create(t, seller, newProduct{Name: "Lamp", Price: money{9900, "EUR"}, OnHand: 4})
	pens := s.create(t, seller, newProduct{Name: "Pen", Price: money{350, "USD"}, OnHand: 100})
	put := func(p product, q int) {
		s.do(t, "PUT", "/v1/cart/lines/"+p.ID.String(), buyer.Token, fmt.Sprintf(`{"quantity":%d}`, q)).Want(t, http.StatusOK)
	}
	put(mugs, 2)
	put(bowls, 3) // more than available: accepted, flagged
	put(vases, 1)
	put(lamps, 1)
	put(pens, 4)
	put(mugs, 3) // replaces the quantity

	// The world changes under the cart.
	s.do(t, "PATCH", "/v1/seller/products/"+mugs.ID.String(), seller.Token, `{"price":{"amount":1500,"currency":"EUR"}}`, "If-Match", `"1"`).Want(t, http.StatusOK)
	s.do(t, "POST", "/internal/reservations", "", reserveBody(uuid.New(), 0, line{vases.ID, 1})).Want(t, http.StatusCreated) // someone else's checkout
	s.do(t, "POST", "/v1/seller/products/"+lamps.ID.String()+"/archive", seller.Token, nil).Want(t, http.StatusOK)

	var c cart
	s.do(t, "GET", "/v1/cart", buyer.Token, nil).Want(t, http.StatusOK).Decode(t, &c)
	type row struct {
		Name         string
		Quantity     int
		UnitPrice    int64
		LineTotal    int64
		Available    int
		Availability string
	}
	var got []row
	for _, l := range c.Lines {
		got = append(got, row{l.Name, l.Quantity, l.UnitPrice.Amount, l.LineTotal.Amount, l.Available, l.Availability})
	}
	want := []row{
		{"Mug", 3, 1500, 4500, 10, "ok"},
		{"Bowl", 3, 2000, 6000, 2, "insufficient"},
		{"Vase", 1, 5000, 5000, 0, "unavailable"},
		{"Lamp", 1, 9900, 9900, 4, "archived"},
		{"Pen", 4, 350, 1400, 100, "ok"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cart lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]money{{4500, "EUR"}, {1400, "USD"}}, c.Totals); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if c.Ready {
		t.Error("got ready with flagged lines, want not ready")
	}

	// Putting an archived product in is refused; changing other lines is not.
	s.do(t, "PUT", "/v1/cart/lines/"+lamps.ID.String(), buyer.Token, `{"quantity":2}`).WantProblem(t, http.StatusConflict, "product-archived")
	s.do(t, "PUT", "/v1/cart/lines/"+uuid.NewString(), buyer.Token, `{"quantity":1}`).WantProblem(t, http.StatusNotFound, "not-found")
	put(bowls, 0) // 0 removes
	s.do(t, "DELETE", "/v1/cart/lines/"+vases.ID.String(), buyer.Token, nil).Want(t, http.StatusNoContent)
	s.do(t, "DELETE", "/v1/cart/lines/"+vases.ID.String(), buyer.Token, nil).Want(t, http.StatusNoContent) // already gone
	s.do(t, "DELETE", "/v1/cart/lines/"+lamps.ID.String(), buyer.Token, nil).Want(t, http.StatusNoContent)
	s.do(t, "GET", "/v1/cart", buyer.Token, nil).Want(t, http.StatusOK).Decode(t, &c)
	if len(c.Lines) != 2 || !c.Ready {
		t.Errorf("got %d lines, ready %v, want the 2 ok lines and ready", len(c.Lines), c.Ready)
	}

	// Carts are personal.
	other := s.user(t, "buyer", true)
	var empty cart
	s.do(t, "GET", "/v1/cart", other.Token, nil).Want(t, http.StatusOK).Decode(t, &empty)
	if len(empty.Lines) != 0 || len(empty.Totals) != 0 || empty.Ready {
		t.Errorf("another buyer sees %+v, want an empty cart", empty)
	}
	s.do(t, "DELETE", "/v1/cart", buyer.Token, nil).Want(t, http.StatusNoContent)
	s.do(t, "GET", "/v1/cart", buyer.Token, nil).Want(t, http.StatusOK).Decode(t, &c)
	if len(c.Lines) != 0 {
		t.Errorf("got %d lines after clearing, want 0", len(c.Lines))
	}
}

// TestCartFull: a cart holds at most 100 products, also when lines are
// added concurrently; changing a line of a full cart still works.
func TestCartFull(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := uuid.New()
	ids := make([]uuid.UUID, 110)
	for i := range ids {
		ids[i] = uuid.New()
	}
	_, err := s.DB.Exec(context.Background(), `
INSERT INTO products (id, seller_id, name, price_amount, currency, on_hand)
SELECT id, $2, 'Bulk ' || id, 100, 'EUR', 5 FROM unnest($1::uuid[]) AS id`, ids, seller)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			r, err := s.send(t.Context(), "PUT", "/v1/cart/lines/"+id.String(), buyer.Token, `{"quantity":1}`)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, st := range statuses {
		count[st]++
	}
	if count[200] != 100 || count[409] != 10 {
		t.Errorf("got statuses %v, want 100 × 200 and 10 × 409 (cart-full)", count)
	}
	var c cart
	s.do(t, "GET", "/v1/cart", buyer.Token, nil).Want(t, http.StatusOK).Decode(t, &c)
	if len(c.Lines) != 100 {
		t.Fatalf("got %d lines, want 100", len(c.Lines))
	}
	s.do(t, "PUT", "/v1/cart/lines/"+c.Lines[0].ProductID.String(), buyer.Token, `{"quantity":5}`).Want(t, http.StatusOK)
}
