package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// cardRefundRefused is the sandbox's card whose refunds are refused
// (services/payment/sandbox/cards.go).
const cardRefundRefused = "4000000000005126"

// TestSagaWedges is issue 12's cases 5 and 12 on one stack of real
// services: no order wedges with the buyer charged (a restock past the
// stock's ceiling, a partly refunded payment, a refund the processor
// refuses, an order unfinished past its bound), and a checkout, live or
// recovered, takes out of the cart exactly the lines it bought.
func TestSagaWedges(t *testing.T) {
	st := startStack(t)
	agg := st.startAggregator(t, st.aggPort, nil)
	k := newRestoreKit(t, st)

	t.Run("cancel after the stock was raised to its ceiling ends refunded", func(t *testing.T) { testCancelAtCeiling(t, st, k) })
	t.Run("a partly refunded payment is refunded its remainder", func(t *testing.T) { testPartlyRefunded(t, st, k) })
	t.Run("a refused refund is held for a person, not retried", func(t *testing.T) { testRefundRefused(t, st, k) })
	t.Run("an order unfinished past its bound is flagged once", func(t *testing.T) { testFlaggedPastBound(t, st, k) })
	t.Run("a live checkout takes out exactly the lines it bought", func(t *testing.T) { testLiveCartLines(t, st, k, agg) })
	t.Run("a recovered checkout takes out exactly the lines it bought", func(t *testing.T) { testRecoveredCartLines(t, st, k) })
}

// testCancelAtCeiling: the seller sells the last unit, then sets the stock
// to 10⁹; the buyer cancels. The restock cannot add the unit (on_hand ≤
// 10⁹), so it records that instead of failing, and the refund never waited
// for it: the order ends refunded, the whole charge back.
func testCancelAtCeiling(t *testing.T, st *stack, k *restoreKit) {
	product := newProduct(t, k.seller, "Last teapot "+uuid.NewString()[:8], 2500, 1)
	k.buyer.addToCart(t, product.Id, 1)
	var o httpapi.Order
	k.buyer.checkout(t, "ceiling-"+uuid.NewString(), cardOK).want(t, http.StatusCreated).decode(t, &o)
	k.seller.c.do("PUT", "/v1/seller/products/"+product.Id.String()+"/stock", map[string]int{"on_hand": 1_000_000_000}).want(t, http.StatusOK)
	before := st.counts(t)

	k.buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", map[string]string{"reason": "changed my mind"}).want(t, http.StatusAccepted)
	eventually(t, 30*time.Second, "the cancelled order to end refunded", func() error {
		if got := k.buyer.order(t, o.Id); got.Status != orders.Refunded {
			return fmt.Errorf("got %s, want refunded", got.Status)
		}
		return nil
	})
	after := st.counts(t)
	if got := after.Refunds - before.Refunds; got != 1 {
		t.Errorf("got %d refunds at the processor, want 1", got)
	}
	if p := sellerProduct(t, k.seller, product.Id); p.OnHand != 1_000_000_000 || p.Reserved != 0 {
		t.Errorf("got on_hand %d, reserved %d; want 1000000000 and 0", p.OnHand, p.Reserved)
	}
	var res struct {
		Status      inventory.ReservationStatus `json:"status"`
		RestockNote *string                     `json:"restock_note"`
	}
	internalGet(t, st.inventory.URL+"/internal/reservations/"+o.Id.String(), &res)
	if res.Status != inventory.Restocked || res.RestockNote == nil || !strings.Contains(*res.RestockNote, "1 of product "+product.Id.String()) {
		t.Errorf("got reservation %s with note %v, want restocked with a note naming the unit left out", res.Status, res.RestockNote)
	}
}

// testPartlyRefunded: a payment refunded in part (by support, say) is
// refunded only what it still holds when the buyer cancels.
func testPartlyRefunded(t *testing.T, st *stack, k *restoreKit) {
	product := k.product(t)
	k.buyer.addToCart(t, product, 2)
	var o httpapi.Order
	k.buyer.checkout(t, "partial-"+uuid.NewString(), cardOK).want(t, http.StatusCreated).decode(t, &o)
	pm := paymentOfOrder(t, st, o.Id)
	k.call(t, "POST", st.pay.URL+"/internal/payments/"+pm.Id.String()+"/refunds", map[string]int64{"amount": 500}, http.StatusCreated,
		"Idempotency-Key", "support-"+o.Id.String())

	k.buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", nil).want(t, http.StatusAccepted)
	eventually(t, 30*time.Second, "the cancelled order to end refunded", func() error {
		if got := k.buyer.order(t, o.Id); got.Status != orders.Refunded {
			return fmt.Errorf("got %s, want refunded", got.Status)
		}
		return nil
	})
	pm = paymentOfOrder(t, st, o.Id)
	if pm.Status != payment.PaymentStatusRefunded || pm.AmountRefunded != 2000 || len(pm.Refunds) != 2 {
		t.Errorf("got payment %s, %d refunded in %d refunds; want refunded, 2000 in 2", pm.Status, pm.AmountRefunded, len(pm.Refunds))
	}
	if got := st.counts(t).RefundedByCharge[deref(pm.ProcessorReference)]; got != 2000 {
		t.Errorf("the processor refunded %d of the charge, want 2000", got)
	}
}

// testRefundRefused: the processor refuses the refund of a cancelled
// order. The order stays cancel_requested, flagged with a hold (the
// reason says why), and the recovery loop does not replay the refusal;
// once an operator clears the flag, one new attempt is made, with a new
// key, and refused again.
func testRefundRefused(t *testing.T, st *stack, k *restoreKit) {
	product := k.product(t)
	k.buyer.addToCart(t, product, 1)
	var o httpapi.Order
	k.buyer.checkout(t, "refused-"+uuid.NewString(), cardRefundRefused).want(t, http.StatusCreated).decode(t, &o)

	k.buyer.c.do("POST", "/v1/orders/"+o.Id.String()+"/cancel", nil).want(t, http.StatusAccepted)
	held := internalOrder(t, st, o.Id)
	if held.Status != orders.CancelRequested || held.Attention == nil || !held.Attention.Hold || !strings.Contains(held.Attention.Reason, "refused") {
		t.Fatalf("got order %s with attention %+v, want cancel_requested, held, the reason naming the refusal", held.Status, held.Attention)
	}
	saga, _ := newTestSaga(t, st, nil)
	for range 3 {
		if _, err := saga.RecoverOnce(context.Background(), checkout.RecoveryConfig{Age: 0, Batch: 50, StepTimeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	pm := paymentOfOrder(t, st, o.Id)
	if len(pm.Refunds) != 1 || pm.Refunds[0].Status != payment.RefundStatusFailed || pm.Status != payment.PaymentStatusSucceeded {
		t.Fatalf("after 3 recovery passes: payment %s with refunds %+v, want succeeded with 1 failed refund", pm.Status, pm.Refunds)
	}
	if got := internalOrder(t, st, o.Id); got.Status != orders.CancelRequested {
		t.Errorf("got %s, want cancel_requested", got.Status)
	}

	// The operator clears the flag: the loop tries once more, as a new attempt.
	k.call(t, "DELETE", st.orders.URL+"/internal/orders/"+o.Id.String()+"/flag", nil, http.StatusOK)
	for range 2 {
		if _, err := saga.RecoverOnce(context.Background(), checkout.RecoveryConfig{Age: 0, Batch: 50, StepTimeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	pm = paymentOfOrder(t, st, o.Id)
	if len(pm.Refunds) != 2 || pm.Refunds[1].Status != payment.RefundStatusFailed {
		t.Errorf("after the flag was cleared: refunds %+v, want 2, both failed", pm.Refunds)
	}
	if got := internalOrder(t, st, o.Id); got.Attention == nil || !got.Attention.Hold {
		t.Errorf("after the second refusal: attention %+v, want held again", got.Attention)
	}
}

// testFlaggedPastBound: an order that stays unfinished (its payment cannot
// be read) past the bound is flagged by the recovery loop: logged at error
// once however many passes meet it, and the flag goes once the order ends.
func testFlaggedPastBound(t *testing.T, st *stack, k *restoreKit) {
	order, product := k.order(t, 1)
	k.reserve(t, order, product, 1)
	k.move(t, order, "reserved")
	pgtest.Exec(t, k.ord, `UPDATE orders SET status_changed_at = now() - interval '1 hour' WHERE id = $1`, order)

	broken, logs := newTestSaga(t, st, map[string]string{"payment": closedURL(t)})
	for range 3 {
		if _, err := broken.RecoverOnce(context.Background(), checkout.RecoveryConfig{Age: 0, Batch: 50, StepTimeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	o := internalOrder(t, st, order)
	if o.Status != orders.Reserved || o.Attention == nil || o.Attention.Hold || !strings.Contains(o.Attention.Reason, "reserved for more than") {
		t.Fatalf("got order %s with attention %+v, want reserved and flagged without a hold", o.Status, o.Attention)
	}
	errors := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"@level":"error"`) && strings.Contains(line, order.String()) {
			errors++
		}
	}
	if errors != 1 {
		t.Errorf("got %d error lines about the order after 3 passes, want 1:\n%s", errors, logs.String())
	}

	// Payment is back: the loop fails the order (nothing was charged) and
	// the flag goes.
	good, _ := newTestSaga(t, st, nil)
	if _, err := good.RecoverOnce(context.Background(), checkout.RecoveryConfig{Age: 0, Batch: 50, StepTimeout: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if o := internalOrder(t, st, order); o.Status != orders.Failed || o.Attention != nil {
		t.Errorf("got order %s with attention %+v, want failed without a flag", o.Status, o.Attention)
	}
}

// testLiveCartLines: while a checkout of 2 units runs (held at its
// charge), the buyer raises the line to 3 and adds another product; the
// confirmed checkout leaves 1 of the first and the new line.
func testLiveCartLines(t *testing.T, st *stack, k *restoreKit, _ *aggregator) {
	buyer := st.newShopper(t, st.mainClient(t), "buyer")
	first, second := k.product(t), k.product(t)
	buyer.addToCart(t, first, 2)
	gate := newGate(t, st.pay.URL)
	slow := st.startAggregator(t, 0, map[string]string{"AGGREGATOR_PAYMENT_URL": gate.srv.URL})
	hold := gate.holdNext("POST", "^/internal/payments$", "")
	done := make(chan *response, 1)
	go func() {
		c := newClient(t, slow.URL).as(buyer.c.token)
		done <- c.do("POST", "/v1/checkout", map[string]any{"shipping_address": addr, "card": card(cardOK)}, "Idempotency-Key", "live-"+uuid.NewString())
	}()
	select {
	case <-hold.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the checkout never reached its charge")
	}
	buyer.addToCart(t, first, 3)
	buyer.addToCart(t, second, 1)
	hold.release <- true
	(<-done).want(t, http.StatusCreated)
	wantCart(t, buyer, map[uuid.UUID]int{first: 1, second: 1})
}

// testRecoveredCartLines: a checkout that died after its charge is
// confirmed by the recovery loop, which takes its lines out of the cart —
// and only them, once.
func testRecoveredCartLines(t *testing.T, st *stack, k *restoreKit) {
	order, product := k.paidOrder(t, 2)
	other := k.product(t)
	k.buyer.c.do("DELETE", "/v1/cart", nil).want(t, http.StatusNoContent)
	k.buyer.addToCart(t, product, 3)
	k.buyer.addToCart(t, other, 1)
	saga, _ := newTestSaga(t, st, nil)
	for range 2 {
		if _, err := saga.RecoverOnce(context.Background(), checkout.RecoveryConfig{Age: 0, Batch: 50, StepTimeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	if o := internalOrder(t, st, order); o.Status != orders.Confirmed {
		t.Fatalf("got order %s, want confirmed by the recovery loop", o.Status)
	}
	wantCart(t, k.buyer, map[uuid.UUID]int{product: 1, other: 1})
}

// wantCart checks the buyer's cart holds exactly want.
func wantCart(t *testing.T, buyer *shopper, want map[uuid.UUID]int) {
	t.Helper()
	var cart httpapi.Cart
	buyer.c.do("GET", "/v1/cart", nil).want(t, http.StatusOK).decode(t, &cart)
	got := map[uuid.UUID]int{}
	for _, l := range cart.Lines {
		got[l.ProductId] = l.Quantity
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got cart %v, want %v", got, want)
	}
}

func paymentOfOrder(t *testing.T, st *stack, order uuid.UUID) payment.Payment {
	t.Helper()
	var list payment.PaymentList
	internalGet(t, st.pay.URL+"/internal/payments?order_id="+order.String(), &list)
	if len(list.Items) != 1 {
		t.Fatalf("order %s has %d payments, want 1", order, len(list.Items))
	}
	return list.Items[0]
}

// sagaOrder is an order as orders' internal API shows it, with its flag.
// (Decoded on its own rather than as the generated type, so that the test
// reads the same on code without flags, and fails there.)
type sagaOrder struct {
	Status    orders.OrderStatus `json:"status"`
	Attention *struct {
		Reason string `json:"reason"`
		Hold   bool   `json:"hold"`
	} `json:"attention"`
}

func internalOrder(t *testing.T, st *stack, id uuid.UUID) sagaOrder {
	t.Helper()
	var o sagaOrder
	if status := internalGet(t, st.orders.URL+"/internal/orders/"+id.String(), &o); status != http.StatusOK {
		t.Fatalf("GET order %s: %d", id, status)
	}
	return o
}

// newTestSaga is a saga as main wires it, over the stack's real
// services; broken replaces a service's URL ("inventory", "orders",
// "payment") with another (a closed port, a listener that never
// answers). Its calls get short deadlines and no retries, so a broken
// service costs a test little. It logs into the returned buffer (and to
// the test's log on failure).
func newTestSaga(t *testing.T, st *stack, broken map[string]string) (*checkout.Saga, *servicetest.Logs) {
	t.Helper()
	logs := &servicetest.Logs{}
	log := logging.New("saga-test", logs, "debug")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- last lines of the test saga's log:\n%s", logs.Tail(60))
		}
	})
	url := func(name, def string) string {
		if u, ok := broken[name]; ok {
			return u
		}
		return def
	}
	transport := httpx.PropagateRequestID{Base: http.DefaultTransport.(*http.Transport).Clone()}
	newPeer := func(name, base string) *peer.Peer {
		timeout, attempts := 5*time.Second, 3
		if _, ok := broken[name]; ok {
			timeout, attempts = 300*time.Millisecond, 1
		}
		return peer.New(peer.Config{
			Name: name, BaseURL: base, Timeout: timeout, Attempts: attempts, Backoff: 20 * time.Millisecond, MaxInFlight: 64,
			Breaker: peer.BreakerConfig{Failures: 1000, OpenFor: time.Second, Probes: 1},
		}, transport, log)
	}
	invPeer, ordPeer, payPeer := newPeer("inventory", url("inventory", st.inventory.URL)), newPeer("orders", url("orders", st.orders.URL)), newPeer("payment", url("payment", st.pay.URL))
	inv, err := inventory.NewClientWithResponses(invPeer.BaseURL(), inventory.WithHTTPClient(invPeer))
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.NewClientWithResponses(ordPeer.BaseURL(), orders.WithHTTPClient(ordPeer))
	if err != nil {
		t.Fatal(err)
	}
	pay, err := payment.NewClientWithResponses(payPeer.BaseURL(), payment.WithHTTPClient(payPeer))
	if err != nil {
		t.Fatal(err)
	}
	return checkout.New(inv, ord, pay, nil, checkout.Config{ReservationTTL: time.Minute}, log), logs
}

// closedURL is the URL of a port nothing listens on: every call is
// refused at once, as a stopped service's would be.
func closedURL(t *testing.T) string {
	t.Helper()
	return "http://" + servicetest.Addr(t)
}

// silentURL is the URL of a listener that accepts connections and never
// answers: every call times out, as a hung service's would.
func silentURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed at the test's end
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return "http://" + l.Addr().String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
