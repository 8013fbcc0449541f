package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// TestAuthorizationMatrix is acceptance 3: every endpoint about one
// object, asked by anonymous, its owner and other users. Another buyer's
// order and another seller's delivery or address are 404 (as if they did
// not exist), seller endpoints are 403 for buyers and unverified sellers,
// anonymous is 401.
//
// Rows that change their object ("fresh") get a new order of their own, and
// list the owner last, so that the refusals are checked before the
// success changes the world.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyerA, buyerB := s.user(t, "buyer", true), s.user(t, "buyer", true)
	sellerA, sellerB := s.user(t, "seller", true), s.user(t, "seller", true)
	unverified := s.user(t, "seller", false)
	admin := s.user(t, "admin", true)

	const (
		anonymous  = "anonymous"
		ownerBuyer = "buyer A (owner)"
		otherBuyer = "buyer B"
		ownSeller  = "seller A (owner)"
		otherSell  = "seller B"
		unverSell  = "unverified seller"
		anAdmin    = "admin"
	)
	actors := []string{anonymous, otherBuyer, otherSell, unverSell, anAdmin, ownerBuyer, ownSeller}
	tokens := map[string]string{
		ownerBuyer: buyerA.Token, otherBuyer: buyerB.Token, ownSeller: sellerA.Token,
		otherSell: sellerB.Token, unverSell: unverified.Token, anAdmin: admin.Token,
	}
	type statuses map[string]int
	var addressID string
	var saved httpapi.SavedAddress
	s.do(t, "POST", "/v1/addresses", request{Token: buyerA.Token, Body: map[string]string{
		"name": "Ada", "line1": "1 rue A", "city": "Paris", "postal_code": "75001", "country": "FR",
	}}).Want(t, http.StatusCreated).DecodeStrict(t, &saved)
	addressID = saved.Id.String()

	shipped := `{"status":"shipped","carrier":"La Poste","tracking_number":"LP123"}`
	tests := []struct {
		name, method, path string // {order}, {delivery} are seller A's part of buyer A's order
		body               string
		fresh              bool
		want               statuses
	}{
		{"read order", "GET", "/v1/orders/{order}", "", false,
			statuses{anonymous: 401, ownerBuyer: 200, otherBuyer: 404, ownSeller: 404, otherSell: 404, unverSell: 404, anAdmin: 404}},
		{"read tracking", "GET", "/v1/orders/{order}/tracking", "", false,
			statuses{anonymous: 401, ownerBuyer: 200, otherBuyer: 404, ownSeller: 404, otherSell: 404, unverSell: 404, anAdmin: 404}},
		{"cancel order", "POST", "/v1/orders/{order}/cancel", `{"reason":"changed my mind"}`, true,
			statuses{anonymous: 401, otherBuyer: 404, ownSeller: 404, otherSell: 404, unverSell: 404, anAdmin: 404, ownerBuyer: 202}},
		{"ship delivery", "POST", "/v1/sales/deliveries/{delivery}/status", shipped, true,
			statuses{anonymous: 401, ownerBuyer: 403, otherBuyer: 403, otherSell: 404, unverSell: 403, anAdmin: 403, ownSeller: 200}},
		{"list sales", "GET", "/v1/sales", "", false,
			statuses{anonymous: 401, ownerBuyer: 403, otherBuyer: 403, otherSell: 200, unverSell: 403, anAdmin: 403, ownSeller: 200}},
		{"list orders", "GET", "/v1/orders", "", false,
			statuses{anonymous: 401, ownerBuyer: 200, otherBuyer: 200, ownSeller: 200, otherSell: 200, unverSell: 200, anAdmin: 200}},
		{"list addresses", "GET", "/v1/addresses", "", false,
			statuses{anonymous: 401, ownerBuyer: 200, otherBuyer: 200, ownSeller: 200}},
		{"delete address", "DELETE", "/v1/addresses/" + addressID, "", false,
			statuses{anonymous: 401, otherBuyer: 404, ownSeller: 404, anAdmin: 404, ownerBuyer: 204}},
		{"missing order", "GET", "/v1/orders/" + uuid.NewString(), "", false,
			statuses{anonymous: 401, ownerBuyer: 404, otherBuyer: 404}},
		{"missing delivery", "POST", "/v1/sales/deliveries/" + uuid.NewString() + "/status", shipped, false,
			statuses{anonymous: 401, ownSeller: 404, otherSell: 404}},
	}
	shared := s.confirmedOrder(t, buyerA, sellerA, sellerB)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := shared
			if tt.fresh {
				o = s.confirmedOrder(t, buyerA, sellerA, sellerB)
			}
			path := strings.NewReplacer("{order}", o.Id.String(), "{delivery}", deliveryOf(t, o, sellerA).Id.String()).Replace(tt.path)
			for _, actor := range actors {
				want, ok := tt.want[actor]
				if !ok {
					continue
				}
				var body any
				if tt.body != "" {
					body = tt.body
				}
				r := s.do(t, tt.method, path, request{Token: tokens[actor], Body: body})
				if r.Status != want {
					t.Errorf("%s: got %d, want %d (%s)", actor, r.Status, want, r.Body)
					continue
				}
				if r.Status >= 400 {
					r.Problem(t)
				}
			}
		})
	}

	// Lists show only the caller's own.
	t.Run("buyer B lists none of A's orders", func(t *testing.T) {
		t.Parallel()
		var page httpapi.OrderPage
		s.do(t, "GET", "/v1/orders", request{Token: buyerB.Token}).Want(t, http.StatusOK).DecodeStrict(t, &page)
		if len(page.Items) != 0 {
			t.Errorf("got %d orders for buyer B, want none", len(page.Items))
		}
	})
}

// TestSalesShowOnlyMyLines is acceptance 3's last clause: an order with two
// sellers shows each only their part — their lines, their subtotal, their
// delivery — and a seller with no part sees nothing; the buyer sees the
// whole order.
func TestSalesShowOnlyMyLines(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	sellerA, sellerB, sellerC := s.user(t, "seller", true), s.user(t, "seller", true), s.user(t, "seller", true)
	o := s.newOrder(t, buyer,
		line{seller: sellerA, unitPrice: 1000, quantity: 1},
		line{seller: sellerB, unitPrice: 250, quantity: 4},
		line{seller: sellerA, unitPrice: 300, quantity: 2})
	o = s.confirm(t, o.Id)

	type part struct {
		Products []string
		Subtotal int64
		Seller   string
	}
	sales := func(u user) []part {
		var page httpapi.SalePage
		s.do(t, "GET", "/v1/sales", request{Token: u.Token}).Want(t, http.StatusOK).DecodeStrict(t, &page)
		var out []part
		for _, sale := range page.Items {
			p := part{Subtotal: sale.Subtotal.Amount, Seller: sale.Delivery.SellerId.String()}
			for _, l := range sale.Lines {
				p.Products = append(p.Products, l.ProductId.String())
				if l.SellerId.String() != u.ID.String() {
					t.Errorf("seller %s sees a line of seller %s", u.ID, l.SellerId)
				}
			}
			if sale.ShippingAddress.PostalCode != "75002" || sale.Lines[0].Quantity == 0 {
				t.Errorf("got sale %+v, want the address and quantities to ship", sale)
			}
			out = append(out, p)
		}
		return out
	}
	want := map[user][]part{
		sellerA: {{Products: []string{o.Lines[0].ProductId.String(), o.Lines[2].ProductId.String()}, Subtotal: 1600, Seller: sellerA.ID.String()}},
		sellerB: {{Products: []string{o.Lines[1].ProductId.String()}, Subtotal: 1000, Seller: sellerB.ID.String()}},
		sellerC: nil,
	}
	for u, w := range want {
		if diff := cmp.Diff(w, sales(u)); diff != "" {
			t.Errorf("sales of %s (-want +got):\n%s", u.ID, diff)
		}
	}
	var whole httpapi.Order
	s.do(t, "GET", "/v1/orders/"+o.Id.String(), request{Token: buyer.Token}).Want(t, http.StatusOK).DecodeStrict(t, &whole)
	if len(whole.Lines) != 3 || whole.Total.Amount != 2600 || len(whole.Deliveries) != 2 {
		t.Errorf("buyer got %d lines, total %d, %d deliveries; want 3, 2600, 2", len(whole.Lines), whole.Total.Amount, len(whole.Deliveries))
	}

	// Each seller's new-sale email lists only their products.
	for _, u := range []user{sellerA, sellerB} {
		msgs := s.emails(t, u.Email)
		if len(msgs) != 1 {
			t.Fatalf("got %d emails to seller %s, want 1", len(msgs), u.ID)
		}
		text := msgs[0].Message.TextPart
		for i, l := range o.Lines {
			mine := l.SellerId.String() == u.ID.String()
			if strings.Contains(text, fmt.Sprintf("Product %d", i+1)) != mine {
				t.Errorf("seller %s's email mentions Product %d: %v, want %v:\n%s", u.ID, i+1, !mine, mine, text)
			}
		}
	}
	if msgs := s.sink.Messages(mailsink.Filter{To: sellerC.Email}); len(msgs) != 0 {
		t.Errorf("got %d emails to a seller with no part, want none", len(msgs))
	}
}

// confirmedOrder creates and confirms an order of buyer with one line of
// each seller.
func (s *service) confirmedOrder(t *testing.T, buyer user, sellers ...user) httpapi.Order {
	t.Helper()
	var lines []line
	for _, sl := range sellers {
		lines = append(lines, line{seller: sl, unitPrice: 1000, quantity: 1})
	}
	return s.confirm(t, s.newOrder(t, buyer, lines...).Id)
}

// deliveryOf is seller's delivery of order o.
func deliveryOf(t *testing.T, o httpapi.Order, seller user) httpapi.Delivery {
	t.Helper()
	for _, d := range o.Deliveries {
		if d.SellerId.String() == seller.ID.String() {
			return d
		}
	}
	t.Fatalf("order %s has no delivery of seller %s", o.Id, seller.ID)
	return httpapi.Delivery{}
}
