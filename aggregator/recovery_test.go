package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/openapi"
)

// recovering is the configuration of an aggregator whose recovery loop
// acts within seconds: a checkout's budget of 4s, orders older than 5s.
var recovering = map[string]string{
	"AGGREGATOR_REQUEST_BUDGET":       "4s",
	"AGGREGATOR_CHECKOUT_BUDGET":      "4s",
	"AGGREGATOR_CALL_TIMEOUT":         "2s",
	"AGGREGATOR_PAYMENT_CALL_TIMEOUT": "3s",
	"AGGREGATOR_RECOVERY_AGE":         "5s",
	"AGGREGATOR_RECOVERY_INTERVAL":    "250ms",
	"AGGREGATOR_BREAKER_OPEN_FOR":     "1s",
}

// mainClient is a client of the stack's main aggregator.
func (s *stack) mainClient(t *testing.T) *client {
	return newClient(t, fmt.Sprintf("http://127.0.0.1:%d", s.aggPort))
}

// latestOrder is the buyer's newest order.
func (sh *shopper) latestOrder(t *testing.T) httpapi.Order {
	t.Helper()
	var page httpapi.OrderPage
	sh.c.do("GET", "/v1/orders?limit=1", nil).want(t, http.StatusOK).decode(t, &page)
	if len(page.Items) == 0 {
		t.Fatal("the buyer has no order")
	}
	return page.Items[0]
}

// waitFinal polls the order until it is confirmed or final.
func (sh *shopper) waitFinal(t *testing.T, id uuid.UUID, within time.Duration) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	eventually(t, within, "order "+id.String()+" to converge", func() error {
		o = sh.order(t, id)
		switch o.Status {
		case orders.Confirmed, orders.Failed, orders.Cancelled, orders.Refunded:
			return nil
		}
		return fmt.Errorf("still %s (payment %+v)", o.Status, o.Payment)
	})
	return o
}

// testUnknownPayment: the processor is too slow, payment answers 202, the
// checkout answers 202; payment's reconciler learns the charge succeeded
// and the recovery loop confirms the order.
func testUnknownPayment(t *testing.T, st *stack) {
	agg := st.startAggregator(t, 0, recovering)
	main := st.mainClient(t)
	seller := st.newShopper(t, main, "seller")
	buyer := st.newShopper(t, main, "buyer")
	product := newProduct(t, seller, "Slowly paid jug", 1200, 4)
	buyer.addToCart(t, product.Id, 1)

	c := newClient(t, agg.URL).as(buyer.c.token)
	r := c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardSlow)}, "Idempotency-Key", "slow-1").want(t, http.StatusAccepted)
	var o httpapi.Order
	r.decode(t, &o)
	if o.Status != orders.Reserved || o.Payment == nil || o.Payment.Status != httpapi.PaymentSummaryStatusPending {
		t.Fatalf("got %s with payment %+v, want reserved with a pending payment", o.Status, o.Payment)
	}
	if r.header.Get("Retry-After") == "" || r.header.Get("Location") != "/v1/orders/"+o.Id.String() {
		t.Errorf("202 without Retry-After or Location: %v", r.header)
	}
	final := buyer.waitFinal(t, o.Id, 40*time.Second)
	if final.Status != orders.Confirmed || final.Payment.Status != httpapi.PaymentSummaryStatusSucceeded {
		t.Fatalf("got %s with payment %+v, want confirmed and succeeded", final.Status, final.Payment)
	}
	if got := st.counts(t).ChargesByReference[o.Id.String()]; got != 1 {
		t.Errorf("processor charged the order %d times, want 1", got)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 3 || sp.Reserved != 0 {
		t.Errorf("got on_hand %d reserved %d, want 3 0", sp.OnHand, sp.Reserved)
	}
}

// testCrash is acceptance 2: the aggregator is SIGKILLed in the middle of
// a checkout — while its charge is on its way (at "reservation"), or just
// after the charge succeeded (at "charge") — and a new aggregator process
// converges the order with one charge and the stock counted once.
func testCrash(t *testing.T, st *stack, at string) {
	ordersGate := newGate(t, st.orders.URL)
	payGate := newGate(t, st.pay.URL)
	env := st.aggregatorEnv(0, recovering)
	env["AGGREGATOR_ORDERS_URL"] = ordersGate.srv.URL
	env["AGGREGATOR_PAYMENT_URL"] = payGate.srv.URL
	env["LOG_LEVEL"] = "debug"
	agg := newProc(t, "aggregator", env)
	agg.Start(t)

	main := st.mainClient(t)
	seller := st.newShopper(t, main, "seller")
	buyer := st.newShopper(t, main, "buyer")
	product := newProduct(t, seller, "Crash-tested kettle "+at, 3100, 3)
	buyer.addToCart(t, product.Id, 1)

	var held *hold
	switch at {
	case "reservation":
		// The stock is reserved and the order says so; the charge is
		// caught on its way to payment.
		held = payGate.holdNext("POST", "^/internal/payments$", "")
	case "charge":
		// The card is charged; the order's move to paid is caught.
		held = ordersGate.holdNext("POST", "^/internal/orders/[^/]+/transitions$", `"to":"paid"`)
	}
	go func() {
		b, _ := json.Marshal(map[string]any{"shipping_address": addr, "card": card(cardOK)})
		req, _ := http.NewRequest("POST", agg.URL+"/v1/checkout", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+buyer.c.token)
		req.Header.Set("Idempotency-Key", "crash-"+at)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-held.arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the checkout never reached the %s", at)
	}
	o := buyer.latestOrder(t)
	agg.Kill()
	t.Logf("aggregator killed with order %s %s", o.Id, o.Status)
	// What was on the wire when it died: the charge goes on to payment
	// (it was sent); the order's transition is lost.
	held.release <- at == "reservation"

	crashedAt := time.Now()
	agg.Start(t)
	final := buyer.waitFinal(t, o.Id, 60*time.Second)
	t.Logf("order %s converged to %s in %s after the restart", o.Id, final.Status, time.Since(crashedAt).Round(time.Millisecond))
	if final.Status != orders.Confirmed {
		t.Fatalf("got %s (%v), want confirmed: the charge succeeded", final.Status, final.StatusReason)
	}
	if got := st.counts(t).ChargesByReference[o.Id.String()]; got != 1 {
		t.Errorf("processor charged the order %d times, want exactly 1", got)
	}
	if final.Payment == nil || final.Payment.Status != httpapi.PaymentSummaryStatusSucceeded {
		t.Errorf("got payment %+v, want succeeded", final.Payment)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.OnHand != 2 || sp.Reserved != 0 {
		t.Errorf("got on_hand %d reserved %d, want 2 0 (counted once)", sp.OnHand, sp.Reserved)
	}
}

// testPaymentDown: payment is down when the checkout wants to charge. The
// checkout answers 202 (the order exists, its outcome is unknown); once
// payment is back the recovery loops of two replicas, finding no charge,
// release the stock and fail the order — never a charge without a
// confirmed order.
func testPaymentDown(t *testing.T, st *stack) {
	agg := st.startAggregator(t, 0, recovering)
	// A second replica recovers the same orders at the same time.
	st.startAggregator(t, 0, recovering)
	main := st.mainClient(t)
	seller := st.newShopper(t, main, "seller")
	buyer := st.newShopper(t, main, "buyer")
	product := newProduct(t, seller, "Unpaid spoon", 700, 2)
	buyer.addToCart(t, product.Id, 2)
	start := st.counts(t)

	st.pay.Kill()
	c := newClient(t, agg.URL).as(buyer.c.token)
	var o httpapi.Order
	c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "Idempotency-Key", "paydown-1").want(t, http.StatusAccepted).decode(t, &o)
	if o.Status != orders.Reserved || o.Payment == nil || o.Payment.Unavailable == nil || !*o.Payment.Unavailable {
		t.Fatalf("got %s with payment %+v, want reserved with the payment unavailable", o.Status, o.Payment)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.Reserved != 2 {
		t.Errorf("got %d reserved while the order waits, want 2", sp.Reserved)
	}
	st.pay.Start(t)

	final := buyer.waitFinal(t, o.Id, 60*time.Second)
	if final.Status != orders.Failed || final.Payment == nil || final.Payment.Status != httpapi.PaymentSummaryStatusNone {
		t.Fatalf("got %s with payment %+v, want failed with no payment", final.Status, final.Payment)
	}
	if sp := sellerProduct(t, seller, product.Id); sp.Reserved != 0 || sp.Available != 2 {
		t.Errorf("got reserved %d available %d, want 0 2 (released)", sp.Reserved, sp.Available)
	}
	if got := st.counts(t).Charges - start.Charges; got != 0 {
		t.Errorf("processor made %d charges, want 0", got)
	}
	// The same key again: the checkout's outcome, not a new attempt.
	c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "Idempotency-Key", "paydown-1").problem(t, http.StatusConflict, "checkout-failed")
}

// testDegradation is acceptance 5: with inventory and orders stopped,
// accounts keep working, the catalogue and checkout answer a fast 503
// naming themselves once the circuit is open, and restarting the services
// restores them without restarting the aggregator. With payment stopped,
// an order is shown without its payment.
func testDegradation(t *testing.T, st *stack) {
	agg := st.startAggregator(t, 0, map[string]string{
		"AGGREGATOR_BREAKER_FAILURES": "3", "AGGREGATOR_BREAKER_OPEN_FOR": "1s",
	})
	c := newClient(t, agg.URL)
	seller := st.newShopper(t, st.mainClient(t), "seller")
	buyer := st.newShopper(t, st.mainClient(t), "buyer")
	product := newProduct(t, seller, "Degraded dish", 1500, 5)
	buyer.addToCart(t, product.Id, 1)
	var o httpapi.Order
	buyer.checkout(t, "degrade-1", cardOK).want(t, http.StatusCreated).decode(t, &o)
	b := c.as(buyer.c.token)

	st.inventory.Kill()
	st.orders.Kill()

	// Accounts do not depend on them.
	c.do("POST", "/v1/login", map[string]string{"email": buyer.email, "password": buyer.password}).want(t, http.StatusOK)
	c.do("POST", "/v1/signup", map[string]string{"email": "late-" + uuid.NewString() + "@example.com", "password": "correct horse battery", "display_name": "Late", "role": "buyer"}).want(t, http.StatusAccepted)

	// Open the circuits (connection refused counts as a failure), then
	// every answer is a fast 503 naming the capability.
	for range 3 {
		c.do("GET", "/v1/products", nil)
		b.do("GET", "/v1/orders", nil)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		capability         string
	}{
		{"catalogue", "GET", "/v1/products?q=dish", nil, "catalogue is unavailable"},
		{"checkout", "POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "checkout is unavailable"},
		{"my orders", "GET", "/v1/orders/" + o.Id.String(), nil, "orders is unavailable"},
	} {
		began := time.Now()
		r := b.do(tc.method, tc.path, tc.body, "Idempotency-Key", "degrade-2")
		took := time.Since(began)
		p := r.problem(t, http.StatusServiceUnavailable, "unavailable")
		if !strings.Contains(p.Detail, tc.capability) {
			t.Errorf("%s: got detail %q, want it to name %q", tc.name, p.Detail, tc.capability)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.name)
		}
		if took > 200*time.Millisecond {
			t.Errorf("%s: the 503 took %s, want under 200ms with the circuit open", tc.name, took)
		}
		t.Logf("%s: 503 in %s", tc.name, took.Round(time.Microsecond))
	}
	c.do("GET", "/v1/accounts/me", nil).problem(t, http.StatusUnauthorized, "unauthenticated")
	b.do("GET", "/v1/accounts/me", nil).want(t, http.StatusOK)

	// Back without restarting the aggregator.
	st.inventory.Start(t)
	st.orders.Start(t)
	eventually(t, 20*time.Second, "catalogue and orders back", func() error {
		if r := c.do("GET", "/v1/products", nil); r.status != http.StatusOK {
			return fmt.Errorf("catalogue: %d", r.status)
		}
		if r := b.do("GET", "/v1/orders/"+o.Id.String(), nil); r.status != http.StatusOK {
			return fmt.Errorf("order: %d", r.status)
		}
		return nil
	})

	// payment down: the order is shown, its payment marked unavailable.
	st.pay.Kill()
	var got httpapi.Order
	b.do("GET", "/v1/orders/"+o.Id.String(), nil).want(t, http.StatusOK).decode(t, &got)
	if got.Status != orders.Confirmed || got.Payment == nil || got.Payment.Status != httpapi.PaymentSummaryStatusUnknown ||
		got.Payment.Unavailable == nil || !*got.Payment.Unavailable {
		t.Errorf("got %s with payment %+v, want confirmed with payment unknown and unavailable", got.Status, got.Payment)
	}
	if len(got.Lines) != 1 || len(got.Deliveries) != 1 {
		t.Errorf("degraded view lost lines or deliveries: %+v", got)
	}
	st.pay.Start(t)
}

// testRateLimit: a client over its budget gets 429 with Retry-After; an
// account has its own budget, apart from its address's.
func testRateLimit(t *testing.T, st *stack) {
	agg := st.startAggregator(t, 0, map[string]string{"AGGREGATOR_RATE_LIMIT": "0.5", "AGGREGATOR_RATE_BURST": "3"})
	buyer := st.newShopper(t, st.mainClient(t), "buyer")
	c := newClient(t, agg.URL)
	for i := range 3 {
		c.do("GET", "/openapi.yaml", nil).want(t, http.StatusOK)
		_ = i
	}
	r := c.do("GET", "/v1/products", nil)
	p := r.problem(t, http.StatusTooManyRequests, "too-many-requests")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("got Retry-After %q, want a positive number of seconds", ra)
	}
	t.Logf("429: %s (Retry-After %s)", p.Detail, r.header.Get("Retry-After"))
	// The buyer's token is its own client.
	c.as(buyer.c.token).do("GET", "/v1/cart", nil).want(t, http.StatusOK)
}

// testDocs: the public spec and its documentation are served, the latter
// with nothing loaded from elsewhere.
func testDocs(t *testing.T, agg *aggregator) {
	c := newClient(t, agg.URL)
	r := c.do("GET", "/openapi.yaml", nil).want(t, http.StatusOK)
	want, _ := openapi.Bundle(openapi.FS, "shop.yaml")
	if !bytes.Equal(r.body, want) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /openapi.yaml: got %d bytes of %s, want shop.yaml", len(r.body), r.header.Get("Content-Type"))
	}
	r = c.do("GET", "/docs", nil).want(t, http.StatusOK)
	html := string(r.body)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /docs: Content-Type %q", r.header.Get("Content-Type"))
	}
	for _, s := range []string{"/v1/checkout", "Idempotency-Key", "out-of-stock", `id="schema-Order"`} {
		if !strings.Contains(html, s) {
			t.Errorf("docs lack %q", s)
		}
	}
	for _, s := range []string{"<script", `src="http`, `href="http`, "@import"} {
		if strings.Contains(html, s) {
			t.Errorf("docs contain %q: they must work offline", s)
		}
	}
	// The services' internal paths are not the public API's.
	for _, path := range []string{"/internal/orders", "/internal/payments?order_id=" + uuid.NewString(), "/.well-known/jwks.json"} {
		resp, err := http.Get(agg.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: got %d %s, want a 404 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
