package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// TestSagaAdvance drives checkout.Advance through its state table: each
// status the saga acts on, meeting each outcome of the step it takes —
// success, the service's refusal (4xx), a service that cannot answer (a
// closed port, as a stopped service), one that does not answer in time (a
// listener that never answers), and the order moved under the saga
// (another replica, a cancellation) — against the real services, each
// order set up in them as a checkout leaves it.
func TestSagaAdvance(t *testing.T) {
	st := startStack(t)
	st.startAggregator(t, st.aggPort, nil)
	k := newRestoreKit(t, st)
	closed, silent := closedURL(t), silentURL(t)

	// The orders a checkout leaves in each status, qty units at 10.00 EUR
	// of a new product of 10 units, charged with number.
	pending := func(qty int) func(t *testing.T) (uuid.UUID, uuid.UUID) {
		return func(t *testing.T) (uuid.UUID, uuid.UUID) { return k.order(t, qty) }
	}
	reserved := func(t *testing.T) (uuid.UUID, uuid.UUID) {
		o, p := k.order(t, 1)
		k.reserve(t, o, p, 1)
		k.move(t, o, "reserved")
		return o, p
	}
	paid := func(t *testing.T) (uuid.UUID, uuid.UUID) { return k.paidOrder(t, 1) }
	confirmed := func(number string) func(t *testing.T) (uuid.UUID, uuid.UUID) {
		return func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := k.order(t, 1)
			k.reserve(t, o, p, 1)
			k.move(t, o, "reserved")
			k.call(t, "POST", st.pay.URL+"/internal/payments", map[string]any{
				"order_id": o, "amount": 1000, "currency": "EUR", "card": card(number),
			}, http.StatusCreated, "Idempotency-Key", "order-"+o.String())
			k.move(t, o, "paid")
			k.call(t, "POST", st.inventory.URL+"/internal/reservations/"+o.String()+"/commit", nil, http.StatusOK)
			k.move(t, o, "confirmed")
			return o, p
		}
	}
	cancelRequested := func(number string) func(t *testing.T) (uuid.UUID, uuid.UUID) {
		return func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := confirmed(number)(t)
			k.move(t, o, "cancel_requested")
			return o, p
		}
	}
	failed := func(t *testing.T) (uuid.UUID, uuid.UUID) {
		o, p := k.order(t, 1)
		k.move(t, o, "failed")
		return o, p
	}

	// What to check of the services after Advance.
	reservation := func(want inventory.ReservationStatus) func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
		return func(t *testing.T, o, _ uuid.UUID, _ checkout.Result) {
			var r inventory.Reservation
			internalGet(t, st.inventory.URL+"/internal/reservations/"+o.String(), &r)
			if r.Status != want {
				t.Errorf("got reservation %q, want %q", r.Status, want)
			}
		}
	}
	paymentIs := func(want payment.PaymentStatus) func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
		return func(t *testing.T, o, _ uuid.UUID, _ checkout.Result) {
			if pm := paymentOfOrder(t, st, o); pm.Status != want {
				t.Errorf("got payment %q, want %q", pm.Status, want)
			}
		}
	}
	noPayment := func(t *testing.T, o, _ uuid.UUID, _ checkout.Result) {
		var list payment.PaymentList
		internalGet(t, st.pay.URL+"/internal/payments?order_id="+o.String(), &list)
		if len(list.Items) != 0 {
			t.Errorf("got %d payments, want none", len(list.Items))
		}
	}
	failure := func(kind apierr.Kind, code string) func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
		return func(t *testing.T, _, _ uuid.UUID, res checkout.Result) {
			e, ok := apierr.As(res.Failure)
			if !ok || e.Kind != kind || e.Code != code {
				t.Errorf("got failure %v, want %s %s", res.Failure, kind, code)
			}
		}
	}
	unavailable := func(t *testing.T, _, _ uuid.UUID, res checkout.Result) {
		if !apierr.Is(res.Wait, apierr.Unavailable) {
			t.Errorf("got wait %v, want a service unavailable", res.Wait)
		}
	}
	held := func(t *testing.T, o, _ uuid.UUID, res checkout.Result) {
		var refused *checkout.RefundRefused
		if !errors.As(res.Wait, &refused) {
			t.Errorf("got wait %v, want the refund refused", res.Wait)
		}
		if got := internalOrder(t, st, o); got.Attention == nil || !got.Attention.Hold {
			t.Errorf("got attention %+v, want a hold", got.Attention)
		}
	}
	all := func(checks ...func(t *testing.T, o, p uuid.UUID, res checkout.Result)) func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
		return func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
			for _, c := range checks {
				c(t, o, p, res)
			}
		}
	}

	tests := []struct {
		name   string
		make   func(t *testing.T) (order, product uuid.UUID)
		card   string            // "" runs Advance without a card (recovery, cancellation)
		broken map[string]string // services replaced by a closed port or a silent listener
		moveTo []string          // moves made in orders after the saga read the order
		want   orders.OrderStatus
		done   bool
		check  func(t *testing.T, order, product uuid.UUID, res checkout.Result)
	}{
		// pending: reserve.
		{name: "pending/success", make: pending(1), card: cardOK, want: orders.Confirmed, done: true,
			check: all(reservation(inventory.Committed), paymentIs(payment.PaymentStatusSucceeded))},
		{name: "pending/4xx out of stock", make: pending(11), card: cardOK, want: orders.Failed, done: true,
			check: all(failure(apierr.Conflict, "out-of-stock"), noPayment)},
		{name: "pending/5xx", make: pending(1), card: cardOK, broken: map[string]string{"inventory": closed}, want: orders.Pending,
			check: unavailable},
		{name: "pending/timeout", make: pending(1), card: cardOK, broken: map[string]string{"inventory": silent}, want: orders.Pending,
			check: unavailable},
		{name: "pending/moved", make: pending(1), card: cardOK, moveTo: []string{"cancel_requested"}, want: orders.Cancelled, done: true,
			check: all(reservation(inventory.Released), noPayment)},
		{name: "pending/without card", make: pending(1), want: orders.Failed, done: true, check: noPayment},
		// orders restored from before the later steps, inventory and
		// payment not: the order is confirmed again, or its stock restocked.
		{name: "pending/without card, stock committed and paid (restored)", make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := k.order(t, 1)
			k.reserve(t, o, p, 1)
			k.call(t, "POST", st.pay.URL+"/internal/payments", map[string]any{
				"order_id": o, "amount": 1000, "currency": "EUR", "card": card(cardOK),
			}, http.StatusCreated, "Idempotency-Key", "order-"+o.String())
			k.call(t, "POST", st.inventory.URL+"/internal/reservations/"+o.String()+"/commit", nil, http.StatusOK)
			return o, p
		}, want: orders.Confirmed, done: true,
			check: all(reservation(inventory.Committed), paymentIs(payment.PaymentStatusSucceeded))},
		{name: "pending/without card, stock committed, no payment (restored)", make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := k.order(t, 1)
			k.reserve(t, o, p, 1)
			k.call(t, "POST", st.inventory.URL+"/internal/reservations/"+o.String()+"/commit", nil, http.StatusOK)
			return o, p
		}, want: orders.Failed, done: true, check: all(reservation(inventory.Restocked), noPayment)},

		// reserved: charge, or read the payment.
		{name: "reserved/success", make: reserved, card: cardOK, want: orders.Confirmed, done: true,
			check: all(reservation(inventory.Committed), paymentIs(payment.PaymentStatusSucceeded))},
		{name: "reserved/4xx card declined", make: reserved, card: cardDeclined, want: orders.Failed, done: true,
			check: all(failure(apierr.PaymentRequired, "card-declined"), reservation(inventory.Released), paymentIs(payment.PaymentStatusFailed))},
		{name: "reserved/5xx", make: reserved, card: cardOK, broken: map[string]string{"payment": closed}, want: orders.Reserved,
			check: all(unavailable, reservation(inventory.Held))},
		{name: "reserved/timeout", make: reserved, broken: map[string]string{"payment": silent}, want: orders.Reserved,
			check: all(unavailable, reservation(inventory.Held))},
		{name: "reserved/moved", make: reserved, card: cardOK, moveTo: []string{"cancel_requested"}, want: orders.Refunded, done: true,
			check: all(reservation(inventory.Released), paymentIs(payment.PaymentStatusRefunded))},
		{name: "reserved/without card, no payment", make: reserved, want: orders.Failed, done: true,
			check: all(reservation(inventory.Released), noPayment)},

		// paid: commit and confirm.
		{name: "paid/success", make: paid, want: orders.Confirmed, done: true,
			check: all(reservation(inventory.Committed), paymentIs(payment.PaymentStatusSucceeded))},
		{name: "paid/4xx reservation lost", make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := paid(t)
			k.release(t, o)
			return o, p
		}, want: orders.Failed, done: true, check: all(reservation(inventory.Released), paymentIs(payment.PaymentStatusRefunded))},
		{name: "paid/5xx", make: paid, broken: map[string]string{"inventory": closed}, want: orders.Paid,
			check: all(unavailable, reservation(inventory.Held))},
		{name: "paid/timeout", make: paid, broken: map[string]string{"orders": silent}, want: orders.Paid,
			check: unavailable},
		{name: "paid/moved", make: paid, moveTo: []string{"cancel_requested"}, want: orders.Refunded, done: true,
			check: all(reservation(inventory.Restocked), paymentIs(payment.PaymentStatusRefunded))},

		// cancel_requested: refund, then give the stock back.
		{name: "cancel_requested/success", make: cancelRequested(cardOK), want: orders.Refunded, done: true,
			check: all(reservation(inventory.Restocked), paymentIs(payment.PaymentStatusRefunded))},
		{name: "cancel_requested/4xx refund refused", make: cancelRequested(cardRefundRefused), want: orders.CancelRequested,
			check: all(held, paymentIs(payment.PaymentStatusSucceeded))},
		{name: "cancel_requested/5xx", make: cancelRequested(cardOK), broken: map[string]string{"payment": closed}, want: orders.CancelRequested,
			check: all(unavailable, reservation(inventory.Committed))},
		// The refund never waits on the stock: with inventory hung, the
		// money is back and only the restock waits.
		{name: "cancel_requested/timeout", make: cancelRequested(cardOK), broken: map[string]string{"inventory": silent}, want: orders.CancelRequested,
			check: all(unavailable, paymentIs(payment.PaymentStatusRefunded), reservation(inventory.Committed))},
		{name: "cancel_requested/moved, finished by another replica", make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
			o, p := cancelRequested(cardOK)(t)
			other, _ := newTestSaga(t, st, nil)
			if res := other.Advance(context.Background(), internalFullOrder(t, st, o), nil); res.Order.Status != orders.Refunded {
				t.Fatalf("the other replica left the order %s", res.Order.Status)
			}
			return o, p
		}, want: orders.Refunded, done: true, check: func(t *testing.T, o, p uuid.UUID, res checkout.Result) {
			if pm := paymentOfOrder(t, st, o); len(pm.Refunds) != 1 {
				t.Errorf("got %d refunds, want 1", len(pm.Refunds))
			}
		}},

		// Nothing left to do: no service is called.
		{name: "confirmed", make: confirmed(cardOK), broken: map[string]string{"inventory": closed, "orders": closed, "payment": closed},
			want: orders.Confirmed, done: true},
		{name: "failed", make: failed, broken: map[string]string{"inventory": closed, "orders": closed, "payment": closed},
			want: orders.Failed, done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, product := tt.make(t)
			o := internalFullOrder(t, st, id) // what the saga read
			k.move(t, id, tt.moveTo...)       // what happened since
			saga, _ := newTestSaga(t, st, tt.broken)
			var c *payment.CardInput
			if tt.card != "" {
				hc := card(tt.card)
				c = &payment.CardInput{Number: hc.Number, ExpMonth: hc.ExpMonth, ExpYear: hc.ExpYear, Cvc: hc.Cvc}
			}
			res := saga.Advance(context.Background(), o, c)
			if res.Order.Status != tt.want || res.Done != tt.done {
				t.Errorf("got %s (done %t, wait %v, failure %v), want %s (done %t)", res.Order.Status, res.Done, res.Wait, res.Failure, tt.want, tt.done)
			}
			if tt.done && res.Wait != nil {
				t.Errorf("done, yet waiting: %v", res.Wait)
			}
			if real := internalOrder(t, st, id); real.Status != tt.want {
				t.Errorf("orders has the order %s, want %s", real.Status, tt.want)
			}
			if tt.check != nil {
				tt.check(t, id, product, res)
			}
		})
	}

	// The refused refund above is the one flagged order: the operators'
	// list shows it, the health check warns until the flag is cleared.
	saga, _ := newTestSaga(t, st, nil)
	health := httptest.NewServer(saga.HealthHandler())
	t.Cleanup(health.Close)
	flagged := httptest.NewServer(saga.FlaggedHandler())
	t.Cleanup(flagged.Close)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var list checkout.Flagged
	if status := internalGet(t, flagged.URL, &list); status != http.StatusOK || list.Count != 1 || !list.Orders[0].Hold ||
		!strings.Contains(list.Orders[0].Reason, "refused") {
		t.Fatalf("flagged orders: got %d %+v, want the one held order", status, list)
	}
	if status, body := get(health.URL); status != http.StatusTooManyRequests || !strings.Contains(body, "1 orders are flagged") {
		t.Errorf("health with a flagged order: got %d %q, want 429 naming 1 order", status, body)
	}
	k.call(t, "DELETE", st.orders.URL+"/internal/orders/"+list.Orders[0].ID.String()+"/flag", nil, http.StatusOK)
	if status, body := get(health.URL); status != http.StatusOK {
		t.Errorf("health without flags: got %d %q, want 200", status, body)
	}
	down, _ := newTestSaga(t, st, map[string]string{"orders": closed})
	downHealth := httptest.NewServer(down.HealthHandler())
	t.Cleanup(downHealth.Close)
	if status, body := get(downHealth.URL); status != http.StatusTooManyRequests {
		t.Errorf("health with orders down: got %d %q, want 429 (a warning, never critical)", status, body)
	}
}

// internalFullOrder reads an order as the saga does.
func internalFullOrder(t *testing.T, st *stack, id uuid.UUID) orders.Order {
	t.Helper()
	var o orders.Order
	if status := internalGet(t, st.orders.URL+"/internal/orders/"+id.String(), &o); status != http.StatusOK {
		t.Fatalf("GET order %s: %d", id, status)
	}
	return o
}
