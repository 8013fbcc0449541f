package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	ordersclient "github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// Test cards of the sandbox processor (services/payment/README.md).
const (
	cardOK       = "4242424242424242"
	cardDeclined = "4000000000000002"
	cardSlow     = "4000000000000077"
)

var addr = httpapi.Address{Name: "Ada Lovelace", Line1: "12 rue de la Paix", City: "Paris", PostalCode: "75002", Country: "FR"}

func card(number string) httpapi.CardInput {
	return httpapi.CardInput{Number: number, ExpMonth: 12, ExpYear: time.Now().Year() + 3, Cvc: "123"}
}

// shopper is an account, signed up, verified and logged in through the
// aggregator alone.
type shopper struct {
	email, password string
	id              uuid.UUID
	c               *client
}

var shopperSeq atomic.Int64

// newShopper signs up, does what the verification email's page does with
// the token of its link (posts it), and logs in; signing up and logging in
// wait for auth's password gate when it sheds load, as a client would.
func (s *stack) newShopper(t *testing.T, c *client, role string) *shopper {
	t.Helper()
	sh := &shopper{email: fmt.Sprintf("%s-%d-%d@example.com", role, time.Now().UnixNano()%1e9, shopperSeq.Add(1)), password: "correct horse battery"}
	c.patiently("POST", "/v1/signup", map[string]string{"email": sh.email, "password": sh.password, "display_name": "Test " + role, "role": role}).want(t, http.StatusAccepted)
	_, token, _ := strings.Cut(s.verificationLink(t, sh.email), "#token=")
	var acct httpapi.Account
	c.do("POST", "/v1/verify-email", map[string]string{"token": token}).want(t, http.StatusOK).decode(t, &acct)
	if acct.VerifiedAt == nil {
		t.Fatalf("account %s not verified after following the link", sh.email)
	}
	sh.id = acct.Id
	var tokens httpapi.TokenPair
	c.patiently("POST", "/v1/login", map[string]string{"email": sh.email, "password": sh.password}).want(t, http.StatusOK).decode(t, &tokens)
	sh.c = c.as(tokens.AccessToken)
	return sh
}

// newProduct puts a product on sale for seller with stock units.
func newProduct(t *testing.T, seller *shopper, name string, price int64, stock int) httpapi.SellerProduct {
	t.Helper()
	var p httpapi.SellerProduct
	r := seller.c.do("POST", "/v1/seller/products", map[string]any{
		"name": name, "description": "Made for the aggregator's tests.", "price": map[string]any{"amount": price, "currency": "EUR"}, "on_hand": stock,
	}).want(t, http.StatusCreated)
	r.decode(t, &p)
	if r.header.Get("ETag") == "" {
		t.Error("createProduct: no ETag passed on")
	}
	return p
}

func (sh *shopper) addToCart(t *testing.T, product uuid.UUID, qty int) {
	t.Helper()
	sh.c.do("PUT", "/v1/cart/lines/"+product.String(), map[string]int{"quantity": qty}).want(t, http.StatusOK)
}

func (sh *shopper) checkout(t *testing.T, key, number string) *response {
	t.Helper()
	return sh.c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(number)}, "Idempotency-Key", key)
}

func (sh *shopper) order(t *testing.T, id uuid.UUID) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	sh.c.do("GET", "/v1/orders/"+id.String(), nil).want(t, http.StatusOK).decode(t, &o)
	return o
}

func sellerProduct(t *testing.T, seller *shopper, id uuid.UUID) httpapi.SellerProduct {
	t.Helper()
	var page httpapi.SellerProductPage
	seller.c.do("GET", "/v1/seller/products?limit=100", nil).want(t, http.StatusOK).decode(t, &page)
	for _, p := range page.Items {
		if p.Id == id {
			return p
		}
	}
	t.Fatalf("product %s not among the seller's", id)
	return httpapi.SellerProduct{}
}

// TestShop runs the shop's acceptance on one stack of real services, one
// part after the other (they share the services, and some stop them). The
// main aggregator finds the services through Consul.
func TestShop(t *testing.T) {
	st := startStack(t)
	agg := st.startConsulAggregator(t, st.aggPort, nil)

	t.Run("journey", func(t *testing.T) { testJourney(t, st, agg) })
	t.Run("failed checkouts compensate", func(t *testing.T) { testCompensation(t, st, agg) })
	t.Run("replayed key", func(t *testing.T) { testReplay(t, st, agg) })
	t.Run("cancel", func(t *testing.T) { testCancel(t, st, agg) })
	t.Run("concurrent checkout of the last units", func(t *testing.T) { testConcurrentCheckout(t, st, agg) })
	t.Run("unknown payment outcome", func(t *testing.T) { testUnknownPayment(t, st) })
	t.Run("crash after the reservation", func(t *testing.T) { testCrash(t, st, "reservation") })
	t.Run("crash after the charge", func(t *testing.T) { testCrash(t, st, "charge") })
	t.Run("payment down mid-checkout", func(t *testing.T) { testPaymentDown(t, st) })
	t.Run("discovery through consul", func(t *testing.T) { testDiscovery(t, st) })
	t.Run("degradation", func(t *testing.T) { testDegradation(t, st) })
	t.Run("rate limit", func(t *testing.T) { testRateLimit(t, st) })
	t.Run("spec and docs", func(t *testing.T) { testDocs(t, agg) })
}

// testJourney is acceptance 1: two shoppers, from signup to tracking,
// through the aggregator alone.
func testJourney(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")

	product := newProduct(t, seller, "Hand-thrown stoneware mug", 1850, 5)

	// The buyer finds it, fills the cart, saves an address.
	var page httpapi.ProductPage
	c.do("GET", "/v1/products?q=stoneware+mug&limit=10", nil).want(t, http.StatusOK).decode(t, &page)
	found := false
	for _, p := range page.Items {
		found = found || p.Id == product.Id
	}
	if !found {
		t.Fatalf("search did not find the new product: %+v", page.Items)
	}
	c.do("GET", "/v1/products/"+product.Id.String(), nil).want(t, http.StatusOK)
	// The anonymous page is kept a moment (pagecache), but a seller's write
	// through this aggregator drops it: the next anonymous read is fresh.
	seller.c.do("PUT", "/v1/seller/products/"+product.Id.String()+"/stock", map[string]int{"on_hand": 0}).want(t, http.StatusOK)
	var sold httpapi.Product
	c.do("GET", "/v1/products/"+product.Id.String(), nil).want(t, http.StatusOK).decode(t, &sold)
	if sold.Available != 0 {
		t.Errorf("an anonymous read right after the seller set the stock to 0: %d available (a stale cached page)", sold.Available)
	}
	seller.c.do("PUT", "/v1/seller/products/"+product.Id.String()+"/stock", map[string]int{"on_hand": 5}).want(t, http.StatusOK)
	buyer.addToCart(t, product.Id, 2)
	var cart httpapi.Cart
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	if !cart.Ready || len(cart.Lines) != 1 {
		t.Fatalf("cart not ready: %+v", cart)
	}
	var saved httpapi.SavedAddress
	buyer.c.do("POST", "/v1/addresses", addr).want(t, http.StatusCreated).decode(t, &saved)

	// Checkout with the saved address.
	start := st.counts(t)
	r := buyer.c.do("POST", "/v1/checkout", map[string]any{"address_id": saved.Id, "card": card(cardOK)}, "Idempotency-Key", "journey-1").want(t, http.StatusCreated)
	var o httpapi.Order
	r.decode(t, &o)
	if o.Status != ordersclient.Confirmed {
		t.Fatalf("got order status %s, want confirmed", o.Status)
	}
	if o.Total.Amount != 3700 || o.Total.Currency != "EUR" {
		t.Errorf("got total %+v, want 3700 EUR", o.Total)
	}
	if o.Payment == nil || o.Payment.Status != httpapi.PaymentSummaryStatusSucceeded || o.Payment.Card == nil || o.Payment.Card.Last4 != "4242" {
		t.Errorf("got payment %+v, want succeeded with card ending 4242", o.Payment)
	}
	if len(o.Deliveries) != 1 || o.Deliveries[0].Status != ordersclient.Preparing {
		t.Errorf("got deliveries %+v, want one preparing", o.Deliveries)
	}
	if loc := r.header.Get("Location"); loc != "/v1/orders/"+o.Id.String() {
		t.Errorf("got Location %q", loc)
	}
	if got := st.counts(t).Charges - start.Charges; got != 1 {
		t.Errorf("processor made %d charges, want 1", got)
	}
	// Stock decreased for good, nothing left reserved, the cart emptied.
	sp := sellerProduct(t, seller, product.Id)
	if sp.OnHand != 3 || sp.Reserved != 0 || sp.Available != 3 {
		t.Errorf("got on_hand %d reserved %d available %d, want 3 0 3", sp.OnHand, sp.Reserved, sp.Available)
	}
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 0 {
		t.Errorf("cart still has %d lines after checkout", len(cart.Lines))
	}

	// The seller sees the sale and ships it.
	var sales httpapi.SalePage
	seller.c.do("GET", "/v1/sales", nil).want(t, http.StatusOK).decode(t, &sales)
	if len(sales.Items) != 1 || sales.Items[0].OrderId != o.Id {
		t.Fatalf("got sales %+v, want the order", sales.Items)
	}
	delivery := sales.Items[0].Delivery.Id
	seller.c.do("POST", "/v1/sales/deliveries/"+delivery.String()+"/status",
		map[string]string{"status": "shipped", "carrier": "La Poste", "tracking_number": "LP123456789FR"}).want(t, http.StatusOK)

	// The buyer sees the tracking, in the composed order and on its own.
	got := buyer.order(t, o.Id)
	if len(got.Deliveries) != 1 || got.Deliveries[0].Status != ordersclient.Shipped ||
		got.Deliveries[0].TrackingNumber == nil || *got.Deliveries[0].TrackingNumber != "LP123456789FR" {
		t.Errorf("got deliveries %+v, want shipped with the tracking number", got.Deliveries)
	}
	if got.Payment == nil || got.Payment.Status != httpapi.PaymentSummaryStatusSucceeded {
		t.Errorf("got payment %+v in the order view, want succeeded", got.Payment)
	}
	var tracking httpapi.Tracking
	buyer.c.do("GET", "/v1/orders/"+o.Id.String()+"/tracking", nil).want(t, http.StatusOK).decode(t, &tracking)
	if len(tracking.Deliveries) != 1 || len(tracking.Deliveries[0].History) != 2 {
		t.Errorf("got tracking %+v, want one delivery with preparing and shipped", tracking)
	}
	var mine httpapi.OrderPage
	buyer.c.do("GET", "/v1/orders", nil).want(t, http.StatusOK).decode(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0].Payment == nil || mine.Items[0].Payment.Status != httpapi.PaymentSummaryStatusSucceeded {
		t.Errorf("got my orders %+v, want the order with its payment", mine.Items)
	}
	// Another buyer cannot read it.
	stranger := st.newShopper(t, c, "buyer")
	stranger.c.do("GET", "/v1/orders/"+o.Id.String(), nil).problem(t, http.StatusNotFound, "not-found")

	// The buyer has the emails: confirmation and shipment.
	eventually(t, 20*time.Second, "buyer's emails", func() error {
		var subjects []string
		for _, m := range st.sink.Messages(mailsink.Filter{To: buyer.email}) {
			subjects = append(subjects, m.Message.Subject)
		}
		joined := strings.Join(subjects, " | ")
		if !strings.Contains(joined, "is confirmed") || !strings.Contains(joined, "has shipped") {
			return fmt.Errorf("got %q", joined)
		}
		return nil
	})
	eventually(t, 20*time.Second, "seller's new-sale email", func() error {
		for _, m := range st.sink.Messages(mailsink.Filter{To: seller.email}) {
			if strings.Contains(m.Message.Subject, "New sale") {
				return nil
			}
		}
		return fmt.Errorf("none")
	})
}

// testCompensation: a checkout that cannot be filled or paid leaves the
// order failed with a reason, nothing charged, and the stock back.
func testCompensation(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")
	scarce := newProduct(t, seller, "Scarce teapot", 4200, 1)
	plenty := newProduct(t, seller, "Plentiful saucer", 500, 10)

	t.Run("out of stock", func(t *testing.T) {
		start := st.counts(t)
		buyer.addToCart(t, plenty.Id, 1)
		buyer.addToCart(t, scarce.Id, 3)
		p := buyer.checkout(t, "oos-1", cardOK).problem(t, http.StatusConflict, "out-of-stock")
		if len(p.Errors) != 1 || p.Errors[0].Field != "lines[1].quantity" || !strings.Contains(p.Errors[0].Detail, "Scarce teapot") {
			t.Errorf("got errors %+v, want lines[1].quantity naming the teapot", p.Errors)
		}
		var mine httpapi.OrderPage
		buyer.c.do("GET", "/v1/orders?status=failed", nil).want(t, http.StatusOK).decode(t, &mine)
		if len(mine.Items) != 1 || mine.Items[0].StatusReason == nil || !strings.HasPrefix(*mine.Items[0].StatusReason, "out of stock") {
			t.Fatalf("got failed orders %+v, want one failed out of stock", mine.Items)
		}
		if pay := mine.Items[0].Payment; pay == nil || pay.Status != httpapi.PaymentSummaryStatusNone {
			t.Errorf("got payment %+v, want none", pay)
		}
		if got := st.counts(t).Charges - start.Charges; got != 0 {
			t.Errorf("processor made %d charges, want 0", got)
		}
		for _, id := range []uuid.UUID{scarce.Id, plenty.Id} {
			if sp := sellerProduct(t, seller, id); sp.Reserved != 0 {
				t.Errorf("product %s has %d reserved, want 0", sp.Name, sp.Reserved)
			}
		}
		// The same key again: the same answer, from the same order.
		p2 := buyer.checkout(t, "oos-1", cardOK).problem(t, http.StatusConflict, "out-of-stock")
		if !strings.Contains(p2.Detail, mine.Items[0].Id.String()) {
			t.Errorf("replay names %q, want order %s", p2.Detail, mine.Items[0].Id)
		}
		buyer.c.do("DELETE", "/v1/cart", nil).want(t, http.StatusNoContent)
	})

	t.Run("declined card", func(t *testing.T) {
		start := st.counts(t)
		buyer.addToCart(t, scarce.Id, 1)
		p := buyer.checkout(t, "declined-1", cardDeclined).problem(t, http.StatusPaymentRequired, "card-declined")
		var mine httpapi.OrderPage
		buyer.c.do("GET", "/v1/orders?status=failed", nil).want(t, http.StatusOK).decode(t, &mine)
		var o *httpapi.Order
		for i := range mine.Items {
			if strings.Contains(p.Detail, mine.Items[i].Id.String()) {
				o = &mine.Items[i]
			}
		}
		if o == nil {
			t.Fatalf("no failed order named by %q", p.Detail)
		}
		if o.Payment == nil || o.Payment.Status != httpapi.PaymentSummaryStatusFailed || o.Payment.FailureCode == nil || *o.Payment.FailureCode != "card-declined" {
			t.Errorf("got payment %+v, want failed card-declined", o.Payment)
		}
		if sp := sellerProduct(t, seller, scarce.Id); sp.Reserved != 0 || sp.Available != 1 {
			t.Errorf("teapot: reserved %d available %d, want 0 and 1 (released)", sp.Reserved, sp.Available)
		}
		if got := st.counts(t).Charges - start.Charges; got != 1 {
			t.Errorf("processor saw %d charge attempts, want 1 (declined)", got)
		}
		// Replayed: the same 402, and no new attempt at the processor.
		buyer.checkout(t, "declined-1", cardDeclined).problem(t, http.StatusPaymentRequired, "card-declined")
		if got := st.counts(t).Charges - start.Charges; got != 1 {
			t.Errorf("after the replay the processor saw %d attempts, want still 1", got)
		}
	})

	t.Run("seller gone", func(t *testing.T) {
		// The seller's address is read from auth at checkout; a seller who
		// deleted their account leaves a product nobody can be told about.
		gone := st.newShopper(t, c, "seller")
		orphan := newProduct(t, gone, "Orphaned jug", 1500, 3)
		gone.c.do("DELETE", "/v1/accounts/me", nil).want(t, http.StatusNoContent)
		start := st.counts(t)
		buyer.addToCart(t, orphan.Id, 1)
		p := buyer.checkout(t, "gone-1", cardOK).problem(t, http.StatusConflict, "seller-gone")
		if !strings.Contains(p.Detail, gone.id.String()) {
			t.Errorf("got detail %q, want it to name the seller %s", p.Detail, gone.id)
		}
		if got := st.counts(t).Charges - start.Charges; got != 0 {
			t.Errorf("processor made %d charges, want 0", got)
		}
		var mine httpapi.OrderPage
		buyer.c.do("GET", "/v1/orders?limit=100", nil).want(t, http.StatusOK).decode(t, &mine)
		for _, o := range mine.Items {
			for _, l := range o.Lines {
				if l.ProductId == orphan.Id {
					t.Errorf("order %s was created with the orphaned product", o.Id)
				}
			}
		}
		buyer.c.do("DELETE", "/v1/cart", nil).want(t, http.StatusNoContent)
	})

	t.Run("bad input names the field", func(t *testing.T) {
		p := buyer.c.do("POST", "/v1/checkout", map[string]any{"card": card("4242424242424241")}, "Idempotency-Key", "bad-1").problem(t, http.StatusBadRequest, "invalid-request")
		fields := map[string]bool{}
		for _, e := range p.Errors {
			fields[e.Field] = true
		}
		if !fields["card.number"] || !fields["shipping_address"] {
			t.Errorf("got errors %+v, want card.number and shipping_address", p.Errors)
		}
		buyer.c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}).problem(t, http.StatusBadRequest, "invalid-request")
		seller.c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "Idempotency-Key", "k").problem(t, http.StatusForbidden, "forbidden")
		c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "Idempotency-Key", "k").problem(t, http.StatusUnauthorized, "unauthenticated")
	})
}

// testReplay is acceptance 4: the same key, sent again while the first is
// running and after it succeeded — with the cart it emptied, or with a
// new one — is the same order, charged once.
func testReplay(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")
	product := newProduct(t, seller, "Replayed bowl", 2500, 10)
	buyer.addToCart(t, product.Id, 1)
	start := st.counts(t)

	// Five identical requests at once (a double click, a retrying proxy).
	var wg sync.WaitGroup
	orders := make([]httpapi.Order, 5)
	statuses := make([]int, 5)
	for i := range orders {
		wg.Go(func() {
			r := buyer.checkout(t, "replay-1", cardOK)
			statuses[i] = r.status
			if r.status == http.StatusCreated {
				r.decode(t, &orders[i])
			}
		})
	}
	wg.Wait()
	for i := range orders {
		if statuses[i] != http.StatusCreated || orders[i].Id != orders[0].Id {
			t.Errorf("request %d: got %d order %s, want 201 with order %s", i, statuses[i], orders[i].Id, orders[0].Id)
		}
	}
	c2 := st.counts(t)
	if got := c2.ChargesByReference[orders[0].Id.String()]; got != 1 {
		t.Errorf("processor charged the order %d times, want 1", got)
	}
	if got := c2.Charges - start.Charges; got != 1 {
		t.Errorf("processor made %d charges, want 1", got)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 9 || sp.Reserved != 0 {
		t.Errorf("got on_hand %d reserved %d, want 9 0 (stock counted once)", sp.OnHand, sp.Reserved)
	}

	// After the success, with the cart the checkout emptied (the answer
	// was lost, the client retries): the key still names its order, which
	// is answered again, and nothing is charged or taken.
	var cart httpapi.Cart
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 0 {
		t.Fatalf("the cart has %d lines after the checkout, want it empty", len(cart.Lines))
	}
	replayOf := func(what string) {
		t.Helper()
		r := buyer.checkout(t, "replay-1", cardOK).want(t, http.StatusCreated)
		var again httpapi.Order
		r.decode(t, &again)
		if again.Id != orders[0].Id || again.Status != ordersclient.Confirmed || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: got order %s %s (replayed %q), want %s confirmed, replayed", what, again.Id, again.Status, r.header.Get("Idempotent-Replayed"), orders[0].Id)
		}
		c := st.counts(t)
		if got := c.Charges - start.Charges; got != 1 {
			t.Errorf("%s: the processor made %d charges, want 1", what, got)
		}
		if got := c.ChargesByReference[orders[0].Id.String()]; got != 1 {
			t.Errorf("%s: the processor charged the order %d times, want 1", what, got)
		}
	}
	replayOf("replay with an empty cart")
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 9 || sp.Reserved != 0 {
		t.Errorf("after the replay with an empty cart: on_hand %d reserved %d, want 9 0", sp.OnHand, sp.Reserved)
	}
	// An empty cart with a key that made no order — a new key, or this
	// key of another buyer — has nothing to buy.
	buyer.checkout(t, "replay-2", cardOK).problem(t, http.StatusConflict, "cart-empty")
	st.newShopper(t, c, "buyer").checkout(t, "replay-1", cardOK).problem(t, http.StatusConflict, "cart-empty")

	// With a cart filled again for another purchase: the same order, and
	// the new cart is left as it is.
	buyer.addToCart(t, product.Id, 3)
	replayOf("replay with a new cart")
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != 3 {
		t.Errorf("the replay touched the new cart: %+v", cart.Lines)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 9 || sp.Reserved != 0 {
		t.Errorf("after the replay: on_hand %d reserved %d, want 9 0", sp.OnHand, sp.Reserved)
	}
}

// testCancel: cancelling a confirmed order before shipment refunds it,
// returns its units to the stock and ends the order; after shipment it is
// refused.
func testCancel(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")
	product := newProduct(t, seller, "Cancelled vase", 3000, 5)

	buyer.addToCart(t, product.Id, 2)
	var o httpapi.Order
	buyer.checkout(t, "cancel-1", cardOK).want(t, http.StatusCreated).decode(t, &o)
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 3 || sp.Reserved != 0 {
		t.Fatalf("after the checkout: on_hand %d reserved %d, want 3 0", sp.OnHand, sp.Reserved)
	}
	var got httpapi.Order
	buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", map[string]string{"reason": "changed my mind"}).want(t, http.StatusAccepted).decode(t, &got)
	if got.Status != ordersclient.Refunded || got.Payment == nil || got.Payment.Status != httpapi.PaymentSummaryStatusRefunded {
		t.Fatalf("got status %s payment %+v, want refunded and refunded", got.Status, got.Payment)
	}
	if got.StatusReason == nil || !strings.Contains(*got.StatusReason, "changed my mind") {
		t.Errorf("got reason %v, want the buyer's", got.StatusReason)
	}
	cc := st.counts(t)
	if cc.Refunds == 0 {
		t.Error("the processor made no refund")
	}
	// The confirmed order's units are back on sale, once.
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 5 || sp.Reserved != 0 || sp.Available != 5 {
		t.Errorf("after the cancellation: on_hand %d reserved %d available %d, want 5 0 5 (restocked)", sp.OnHand, sp.Reserved, sp.Available)
	}
	var rsv struct {
		Status string `json:"status"`
	}
	if code := internalGet(t, st.inventory.URL+"/internal/reservations/"+o.Id.String(), &rsv); code != http.StatusOK || rsv.Status != "restocked" {
		t.Errorf("got reservation %d %q, want 200 restocked", code, rsv.Status)
	}
	// Asking again changes nothing; another's order is 404.
	buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", nil).problem(t, http.StatusConflict, "illegal-transition")
	stranger := st.newShopper(t, c, "buyer")
	stranger.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", nil).problem(t, http.StatusNotFound, "not-found")

	// Shipped: too late.
	buyer.addToCart(t, product.Id, 1)
	buyer.checkout(t, "cancel-2", cardOK).want(t, http.StatusCreated).decode(t, &o)
	var sales httpapi.SalePage
	seller.c.do("GET", "/v1/sales?delivery_status=preparing", nil).want(t, http.StatusOK).decode(t, &sales)
	for _, s := range sales.Items {
		if s.OrderId == o.Id {
			seller.c.do("POST", "/v1/sales/deliveries/"+s.Delivery.Id.String()+"/status",
				map[string]string{"status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"}).want(t, http.StatusOK)
		}
	}
	buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", nil).problem(t, http.StatusConflict, "already-shipped")
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 4 || sp.Reserved != 0 {
		t.Errorf("after the refused cancellation: on_hand %d reserved %d, want 4 0 (the shipped unit stays sold)", sp.OnHand, sp.Reserved)
	}
}

// testConcurrentCheckout is acceptance 3: buyers racing for the last
// units; exactly as many win as there are units.
func testConcurrentCheckout(t *testing.T, st *stack, agg *aggregator) {
	const buyers, units = 100, 10
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	product := newProduct(t, seller, "Last lamps", 9900, units)

	shoppers := make([]*shopper, buyers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range shoppers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			shoppers[i] = st.newShopper(t, c, "buyer")
			shoppers[i].addToCart(t, product.Id, 1)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	start := st.counts(t)
	began := time.Now()
	statuses := make([]int, buyers)
	slugs := make([]string, buyers)
	gate := make(chan struct{})
	for i, sh := range shoppers {
		wg.Go(func() {
			<-gate
			r := sh.checkout(t, "race-1", cardOK)
			statuses[i] = r.status
			if r.status >= 400 {
				var p problem
				r.decode(t, &p)
				slugs[i] = p.Type
			}
		})
	}
	close(gate)
	wg.Wait()
	t.Logf("%d concurrent checkouts answered in %s", buyers, time.Since(began).Round(time.Millisecond))
	won, lost := 0, 0
	for i := range statuses {
		switch {
		case statuses[i] == http.StatusCreated:
			won++
		case statuses[i] == http.StatusConflict && strings.HasSuffix(slugs[i], "/out-of-stock"):
			lost++
		default:
			t.Errorf("buyer %d: got %d %s, want 201 or 409 out-of-stock", i, statuses[i], slugs[i])
		}
	}
	if won != units || lost != buyers-units {
		t.Errorf("got %d confirmed and %d out of stock, want %d and %d", won, lost, units, buyers-units)
	}
	if got := st.counts(t).Charges - start.Charges; got != units {
		t.Errorf("processor made %d charges, want %d", got, units)
	}
	sp := sellerProduct(t, seller, product.Id)
	if sp.OnHand != 0 || sp.Reserved != 0 {
		t.Errorf("got on_hand %d reserved %d, want 0 0 (no reservation left held)", sp.OnHand, sp.Reserved)
	}
}
