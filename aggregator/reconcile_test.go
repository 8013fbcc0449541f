package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

// TestReconcile is the consistency across services after a restore (issue
// 11, point 8). The real services run on their own databases; each case
// makes an order as the checkout would (through the aggregator, or step by
// step through the services' internal APIs), then takes from one
// service's database what a restore to an earlier point would not have
// (rows deleted, as a backup taken before them lacks them). Everything is
// then aged past the grace period, except the too-young and in-flight
// cases, and one pass runs through POST /internal/reconcile.
//
// Before it, two aggregators whose orders service answers 503 (to
// everything; to the lookup of one order, the re-check before acting)
// run a pass each and must change nothing: "not known" is never "does not
// exist". After it, each case's safe outcome is read in the databases, a
// second pass does nothing more, and a third pass, once the young objects
// are old, resolves them too.
func TestReconcile(t *testing.T) {
	st := startStack(t)
	agg := st.startAggregator(t, st.aggPort, nil)
	k := newRestoreKit(t, st)

	type state struct {
		order, payment, reservation string // "" when there is none
		onHand, reserved            int    // of the case's product
	}
	type kase struct {
		name string
		// make builds the case and returns its order id and product id.
		make func(t *testing.T) (order, product uuid.UUID)
		// before is the state after make (and the restore), after the one
		// after the pass.
		before, after state
		// reason is part of the order's status reason after the pass.
		reason string
		// logged is a part of the warn line the resolution logs; "" when
		// nothing is done.
		logged string
	}
	cases := []kase{
		{
			name: "consistent confirmed order",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				return k.checkout(t, "consistent", 2)
			},
			before: state{"confirmed", "succeeded", "committed", 8, 0},
			after:  state{"confirmed", "succeeded", "committed", 8, 0},
		},
		{
			name: "orders lost a confirmed order: refund, restock",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.checkout(t, "lost-order", 2)
				k.forgetOrder(t, o)
				return o, p
			},
			before: state{"", "succeeded", "committed", 8, 0},
			after:  state{"", "refunded", "restocked", 10, 0},
			logged: "payment refunded; its order does not exist",
		},
		{
			name: "held reservation of an unknown order: release",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := uuid.New(), k.product(t)
				k.reserve(t, o, p, 3)
				return o, p
			},
			before: state{"", "", "held", 10, 3},
			after:  state{"", "", "released", 10, 0},
			logged: "reservation released; its order does not exist",
		},
		{
			name: "captured payment of an unknown order: refund",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o := uuid.New()
				k.charge(t, o, 4200)
				return o, uuid.Nil
			},
			before: state{payment: "succeeded"},
			after:  state{payment: "refunded"},
			logged: "payment refunded; its order does not exist",
		},
		{
			name: "payment lost a paid order's charge: release, fail",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.paidOrder(t, 1)
				k.forgetPayment(t, o)
				return o, p
			},
			before: state{"paid", "", "held", 10, 1},
			after:  state{"failed", "", "released", 10, 0},
			reason: "the payment service has no payment for this order",
			logged: "paid order without a payment failed",
		},
		{
			name: "payment lost a confirmed order's charge: cancel, restock",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.checkout(t, "lost-payment", 3)
				k.forgetPayment(t, o)
				return o, p
			},
			before: state{"confirmed", "", "committed", 7, 0},
			after:  state{"cancelled", "", "restocked", 10, 0},
			reason: "the payment service has no payment for this order",
			logged: "confirmed order without a payment cancelled",
		},
		{
			name: "payment lost a shipped order's charge: flagged",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.checkout(t, "lost-payment-shipped", 1)
				k.ship(t, o)
				k.forgetPayment(t, o)
				return o, p
			},
			before: state{"confirmed", "", "committed", 9, 0},
			after:  state{"confirmed", "", "committed", 9, 0},
			logged: "confirmed order without a payment has shipped; left to a person",
		},
		{
			name: "inventory lost a reserved order's reservation: fail",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.order(t, 2)
				k.reserve(t, o, p, 2)
				k.move(t, o, "reserved")
				k.forgetReservation(t, o)
				return o, p
			},
			before: state{"reserved", "", "", 10, 0},
			after:  state{"failed", "", "", 10, 0},
			reason: "the stock reservation of this order was lost",
			logged: "order without a reservation failed",
		},
		{
			name: "inventory lost a paid order's reservation: refund, fail",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.paidOrder(t, 2)
				k.forgetReservation(t, o)
				return o, p
			},
			before: state{"paid", "succeeded", "", 10, 0},
			after:  state{"failed", "refunded", "", 10, 0},
			reason: "the payment was refunded",
			logged: "order without a reservation failed",
		},
		{
			name: "inventory lost a confirmed order's sale: flagged",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.checkout(t, "lost-sale", 4)
				k.forgetReservation(t, o)
				return o, p
			},
			before: state{"confirmed", "succeeded", "", 10, 0},
			after:  state{"confirmed", "succeeded", "", 10, 0},
			logged: "confirmed order without a reservation",
		},
		{
			name: "payment lost the refund of a failed order: refund",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				// The saga refunded, released and failed the order; payment
				// was restored to before the refund.
				o, p := k.order(t, 1)
				k.reserve(t, o, p, 1)
				k.move(t, o, "reserved")
				k.charge(t, o, 1000)
				k.release(t, o)
				k.move(t, o, "failed")
				return o, p
			},
			before: state{"failed", "succeeded", "released", 10, 0},
			after:  state{"failed", "refunded", "released", 10, 0},
			logged: "payment refunded; its order is failed",
		},
	}
	// Made after the others were aged: younger than the grace period.
	young := []kase{
		{
			name: "too young: held reservation of an unknown order",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := uuid.New(), k.product(t)
				k.reserve(t, o, p, 1)
				return o, p
			},
			before: state{"", "", "held", 10, 1},
			after:  state{"", "", "released", 10, 0},
		},
		{
			name: "too young: captured payment of an unknown order",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o := uuid.New()
				k.charge(t, o, 990)
				return o, uuid.Nil
			},
			before: state{payment: "succeeded"},
			after:  state{payment: "refunded"},
		},
		{
			name: "too young: paid order without a payment",
			make: func(t *testing.T) (uuid.UUID, uuid.UUID) {
				o, p := k.paidOrder(t, 1)
				k.forgetPayment(t, o)
				return o, p
			},
			before: state{"paid", "", "held", 10, 1},
			after:  state{"failed", "", "released", 10, 0},
		},
	}

	read := func(t *testing.T, order, product uuid.UUID) (state, string) {
		t.Helper()
		var s state
		reason := k.orderState(t, order, &s.order)
		k.scalar(t, k.pay, `SELECT status FROM payments WHERE order_id = $1`, order, &s.payment)
		k.scalar(t, k.inv, `SELECT status FROM reservations WHERE order_id = $1`, order, &s.reservation)
		if product != uuid.Nil {
			if err := k.inv.QueryRow(context.Background(), `SELECT on_hand, reserved FROM products WHERE id = $1`, product).Scan(&s.onHand, &s.reserved); err != nil {
				t.Fatal(err)
			}
		}
		return s, reason
	}
	type made struct {
		kase
		order, product uuid.UUID
	}
	build := func(list []kase) []made {
		var out []made
		for _, c := range list {
			o, p := c.make(t)
			out = append(out, made{c, o, p})
		}
		return out
	}
	check := func(t *testing.T, list []made, after bool) {
		t.Helper()
		for _, m := range list {
			want := m.before
			if after {
				want = m.after
			}
			got, reason := read(t, m.order, m.product)
			if got != want {
				t.Errorf("%s: got %+v, want %+v", m.name, got, want)
			}
			if after && m.reason != "" && !strings.Contains(reason, m.reason) {
				t.Errorf("%s: got reason %q, want it to say %q", m.name, reason, m.reason)
			}
		}
	}

	old := build(cases)
	check(t, old, false)
	// What the restore left is older than the grace period (5m).
	k.age(t, 10*time.Minute)
	fresh := build(young)
	inFlight := k.startHeldCheckout(t)

	t.Run("a service that cannot answer changes nothing", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			fault func(r *http.Request) bool
		}{
			{"orders down", func(*http.Request) bool { return true }},
			{"orders cannot confirm an absence", func(r *http.Request) bool {
				return r.Method == http.MethodGet && orderPath.MatchString(r.URL.Path)
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				proxy := faultProxy(t, st.orders.URL, tt.fault)
				faulty := st.startAggregator(t, 0, map[string]string{
					"AGGREGATOR_ORDERS_URL": proxy.URL, "AGGREGATOR_BREAKER_FAILURES": "100000",
				})
				c := reconcile(t, faulty.URL)
				t.Logf("pass: %+v", c)
				if n := c.PaymentsRefunded + c.ReservationsReleased + c.ReservationsRestocked + c.OrdersFailed + c.OrdersCancelled; n != 0 {
					t.Errorf("got %d actions with orders answering 503, want none: %+v", n, c)
				}
				if c.Complete && c.Unknown == 0 {
					t.Errorf("got a complete pass with nothing unknown, want the orders' 503s to show: %+v", c)
				}
				check(t, old, false)
				check(t, fresh, false)
			})
		}
	})

	var first checkout.Counts
	t.Run("one pass resolves each case the safe way", func(t *testing.T) {
		first = reconcile(t, agg.URL)
		t.Logf("first pass: %+v", first)
		check(t, old, true)
		check(t, fresh, false)
		want := tally{Refunded: 4, Released: 1, Restocked: 1, Failed: 3, Cancelled: 1, Flagged: 2}
		if got := actions(first); got != want {
			t.Errorf("got counts %+v, want %+v", got, want)
		}
		if !first.Complete || first.PaymentsChecked == 0 || first.ReservationsChecked == 0 || first.OrdersChecked == 0 {
			t.Errorf("got an incomplete pass or nothing checked: %+v", first)
		}
		for _, m := range old {
			if m.logged != "" && !warned(agg.Logs.String(), m.order, m.logged) {
				t.Errorf("%s: no warn line %q naming order %s", m.name, m.logged, m.order)
			}
		}
		// The in-flight checkout was left alone: its order reserved, its
		// stock held, no payment yet.
		got, _ := read(t, inFlight.order, inFlight.product)
		if want := (state{"reserved", "", "held", 10, 1}); got != want {
			t.Errorf("in-flight checkout: got %+v, want %+v", got, want)
		}
	})

	t.Run("the in-flight checkout completes", func(t *testing.T) {
		inFlight.release(t)
		got, _ := read(t, inFlight.order, inFlight.product)
		if want := (state{"confirmed", "succeeded", "committed", 9, 0}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})

	t.Run("a second pass does nothing more", func(t *testing.T) {
		c := reconcile(t, agg.URL)
		if got, want := actions(c), (tally{Flagged: 2}); got != want {
			t.Errorf("got counts %+v, want %+v (the two flagged cases again)", got, want)
		}
		check(t, old, true)
		check(t, fresh, false)
	})

	t.Run("the young objects, once old, are resolved", func(t *testing.T) {
		k.age(t, 10*time.Minute)
		c := reconcile(t, agg.URL)
		want := tally{Refunded: 1, Released: 1, Failed: 1, Flagged: 2}
		if got := actions(c); got != want {
			t.Errorf("got counts %+v, want %+v", got, want)
		}
		check(t, old, true)
		check(t, fresh, true)
		got, _ := read(t, inFlight.order, inFlight.product)
		if want := (state{"confirmed", "succeeded", "committed", 9, 0}); got != want {
			t.Errorf("the completed checkout: got %+v, want %+v", got, want)
		}
	})
}

// orderPath is orders' GET /internal/orders/{id}.
var orderPath = regexp.MustCompile(`^/internal/orders/[0-9a-f-]{36}$`)

// tally is the part of a pass's counts a test can predict: what was done
// and found.
type tally struct {
	Refunded, Released, Restocked, Failed, Cancelled, Waiting, Flagged, Unknown int
}

func actions(c checkout.Counts) tally {
	return tally{
		Refunded: c.PaymentsRefunded, Released: c.ReservationsReleased, Restocked: c.ReservationsRestocked,
		Failed: c.OrdersFailed, Cancelled: c.OrdersCancelled, Waiting: c.Waiting, Flagged: c.Flagged, Unknown: c.Unknown,
	}
}

// reconcile runs one pass through the aggregator's internal endpoint (not
// a shop.yaml path: the test client's validation does not apply).
func reconcile(t *testing.T, aggURL string) checkout.Counts {
	t.Helper()
	resp, err := http.Post(aggURL+"/internal/reconcile", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /internal/reconcile: got %d, want 200: %s", resp.StatusCode, b)
	}
	var c checkout.Counts
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !strings.HasPrefix(c.PassID, "reconcile-") {
		t.Errorf("got pass id %q", c.PassID)
	}
	return c
}

// warned reports whether logs hold a warn line naming order with msg.
func warned(logs string, order uuid.UUID, msg string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if l["@level"] == "warn" && l["order_id"] == order.String() && strings.Contains(fmt.Sprint(l["@message"]), msg) {
			return true
		}
	}
	return false
}

// faultProxy forwards to target, except the requests fault matches, which
// it answers 503 problem+json, as a service that cannot serve them would.
func faultProxy(t *testing.T, target string, fault func(*http.Request) bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault(r) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"type":"https://mylittleshopping.dev/problems/unavailable","title":"Service Unavailable","status":503,"detail":"the database is not ready"}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// restoreKit makes orders as the checkout does, and takes from a
// service's database what a restore to an earlier point would lack.
type restoreKit struct {
	st            *stack
	seller, buyer *shopper
	pay, inv, ord *pgxpool.Pool
}

func newRestoreKit(t *testing.T, st *stack) *restoreKit {
	t.Helper()
	main := st.mainClient(t)
	k := &restoreKit{st: st, seller: st.newShopper(t, main, "seller"), buyer: st.newShopper(t, main, "buyer")}
	open := func(p *proc) *pgxpool.Pool {
		pool, err := pgxpool.New(context.Background(), p.Env["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}
	k.pay, k.inv, k.ord = open(st.pay), open(st.inventory), open(st.orders)
	return k
}

// product is a new product of 10 units at 10.00 EUR.
func (k *restoreKit) product(t *testing.T) uuid.UUID {
	t.Helper()
	return newProduct(t, k.seller, "Restored teapot "+uuid.NewString()[:8], 1000, 10).Id
}

// checkout buys qty units of a new product through the aggregator.
func (k *restoreKit) checkout(t *testing.T, key string, qty int) (order, product uuid.UUID) {
	t.Helper()
	product = k.product(t)
	k.buyer.addToCart(t, product, qty)
	var o httpapi.Order
	k.buyer.checkout(t, "reconcile-"+key, cardOK).want(t, http.StatusCreated).decode(t, &o)
	return o.Id, product
}

// call sends a request to a service's internal API and wants status.
func (k *restoreKit) call(t *testing.T, method, url string, body any, status int, headers ...string) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: got %d, want %d: %s", method, url, resp.StatusCode, status, b)
	}
	return b
}

// order creates a pending order of qty units of a new product in orders,
// as the checkout's step 2 does.
func (k *restoreKit) order(t *testing.T, qty int) (order, product uuid.UUID) {
	t.Helper()
	product = k.product(t)
	body := map[string]any{
		"buyer_id": k.buyer.id, "buyer_email": k.buyer.email, "shipping_address": addr,
		"lines": []map[string]any{{
			"product_id": product, "seller_id": k.seller.id, "seller_email": k.seller.email,
			"name": "Restored teapot", "unit_price": 1000, "currency": "EUR", "quantity": qty,
		}},
	}
	var o struct{ ID uuid.UUID }
	b := k.call(t, "POST", k.st.orders.URL+"/internal/orders", body, http.StatusCreated, "Idempotency-Key", uuid.NewString())
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o.ID, product
}

func (k *restoreKit) reserve(t *testing.T, order, product uuid.UUID, qty int) {
	t.Helper()
	k.call(t, "POST", k.st.inventory.URL+"/internal/reservations",
		map[string]any{"order_id": order, "lines": []map[string]any{{"product_id": product, "quantity": qty}}}, http.StatusCreated)
}

func (k *restoreKit) release(t *testing.T, order uuid.UUID) {
	t.Helper()
	k.call(t, "POST", k.st.inventory.URL+"/internal/reservations/"+order.String()+"/release", nil, http.StatusOK)
}

// charge makes a succeeded payment for order, with the saga's key.
func (k *restoreKit) charge(t *testing.T, order uuid.UUID, amount int64) {
	t.Helper()
	k.call(t, "POST", k.st.pay.URL+"/internal/payments", map[string]any{
		"order_id": order, "amount": amount, "currency": "EUR", "card": card(cardOK),
	}, http.StatusCreated, "Idempotency-Key", "order-"+order.String())
}

// move takes order through the transitions to each status.
func (k *restoreKit) move(t *testing.T, order uuid.UUID, to ...string) {
	t.Helper()
	for _, s := range to {
		body := map[string]string{"to": s}
		if s == "failed" {
			body["reason"] = "payment refused: the card was declined"
		}
		k.call(t, "POST", k.st.orders.URL+"/internal/orders/"+order.String()+"/transitions", body, http.StatusOK)
	}
}

// paidOrder is an order the checkout reserved and charged, moved to paid,
// whose reservation is not committed yet.
func (k *restoreKit) paidOrder(t *testing.T, qty int) (order, product uuid.UUID) {
	t.Helper()
	order, product = k.order(t, qty)
	k.reserve(t, order, product, qty)
	k.move(t, order, "reserved")
	k.charge(t, order, int64(1000*qty))
	k.move(t, order, "paid")
	return order, product
}

// ship has the seller ship the order's delivery.
func (k *restoreKit) ship(t *testing.T, order uuid.UUID) {
	t.Helper()
	o := k.buyer.order(t, order)
	if len(o.Deliveries) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(o.Deliveries))
	}
	k.seller.c.do("POST", "/v1/sales/deliveries/"+o.Deliveries[0].Id.String()+"/status",
		map[string]string{"status": "shipped", "carrier": "La Poste", "tracking_number": "LP987654321FR"}).want(t, http.StatusOK)
}

// forgetOrder: orders restored to before the order.
func (k *restoreKit) forgetOrder(t *testing.T, order uuid.UUID) {
	t.Helper()
	pgtest.Exec(t, k.ord, `DELETE FROM orders WHERE id = $1`, order) // lines, history, deliveries cascade
}

// forgetPayment: payment restored to before the charge.
func (k *restoreKit) forgetPayment(t *testing.T, order uuid.UUID) {
	t.Helper()
	for _, sql := range []string{
		`DELETE FROM idempotency_keys WHERE payment_id IN (SELECT id FROM payments WHERE order_id = $1)`,
		`DELETE FROM refunds WHERE payment_id IN (SELECT id FROM payments WHERE order_id = $1)`,
		`DELETE FROM payments WHERE order_id = $1`,
	} {
		pgtest.Exec(t, k.pay, sql, order)
	}
}

// forgetReservation: inventory restored to before the reservation, its
// stock counters as they were then.
func (k *restoreKit) forgetReservation(t *testing.T, order uuid.UUID) {
	t.Helper()
	pgtest.Exec(t, k.inv, `
WITH r AS (SELECT status FROM reservations WHERE order_id = $1),
	l AS (SELECT product_id, quantity FROM reservation_lines WHERE order_id = $1),
	p AS (UPDATE products SET
		reserved = reserved - CASE WHEN (SELECT status FROM r) = 'held' THEN l.quantity ELSE 0 END,
		on_hand = on_hand + CASE WHEN (SELECT status FROM r) = 'committed' THEN l.quantity ELSE 0 END
		FROM l WHERE products.id = l.product_id)
DELETE FROM reservations WHERE order_id = $1`, order)
}

// age moves every row's times back by d in the three databases, as if d
// had passed.
func (k *restoreKit) age(t *testing.T, d time.Duration) {
	t.Helper()
	secs := d.Seconds()
	pgtest.Exec(t, k.pay, `UPDATE payments SET created_at = created_at - make_interval(secs => $1), updated_at = updated_at - make_interval(secs => $1)`, secs)
	pgtest.Exec(t, k.inv, `UPDATE reservations SET created_at = created_at - make_interval(secs => $1)`, secs)
	pgtest.Exec(t, k.ord, `UPDATE orders SET created_at = created_at - make_interval(secs => $1), status_changed_at = status_changed_at - make_interval(secs => $1)`, secs)
}

// scalar reads one text value into dst, "" when there is no row.
func (k *restoreKit) scalar(t *testing.T, db *pgxpool.Pool, sql string, arg any, dst *string) {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, arg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// orderState reads the order's status into dst ("" when orders does not
// have it) and returns its reason.
func (k *restoreKit) orderState(t *testing.T, order uuid.UUID, dst *string) string {
	t.Helper()
	var reason string
	rows, err := k.ord.Query(context.Background(), `SELECT status, status_reason FROM orders WHERE id = $1`, order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst, &reason); err != nil {
			t.Fatal(err)
		}
	}
	return reason
}

// heldCheckout is a checkout in flight: its charge is held on its way to
// payment.
type heldCheckout struct {
	order, product uuid.UUID
	hold           *hold
	done           chan int
}

// startHeldCheckout starts a checkout through an aggregator of its own
// whose calls to payment pass a gate, and holds it at its charge: the
// order is reserved, its stock held, and no payment exists yet.
func (k *restoreKit) startHeldCheckout(t *testing.T) *heldCheckout {
	t.Helper()
	gate := newGate(t, k.st.pay.URL)
	// Budgets long enough for the charge to wait through the passes.
	agg := k.st.startAggregator(t, 0, map[string]string{
		"AGGREGATOR_PAYMENT_URL": gate.srv.URL, "HTTP_WRITE_TIMEOUT": "5m",
		"AGGREGATOR_CHECKOUT_BUDGET": "4m", "AGGREGATOR_PAYMENT_CALL_TIMEOUT": "4m", "AGGREGATOR_RECOVERY_AGE": "4m30s",
	})
	h := &heldCheckout{product: k.product(t), done: make(chan int, 1)}
	k.buyer.addToCart(t, h.product, 1)
	h.hold = gate.holdNext("POST", "^/internal/payments$", "")
	token := k.buyer.c.token
	go func() {
		b, _ := json.Marshal(map[string]any{"shipping_address": addr, "card": card(cardOK)})
		req, _ := http.NewRequest("POST", agg.URL+"/v1/checkout", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", "reconcile-in-flight")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			h.done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h.done <- resp.StatusCode
	}()
	select {
	case <-h.hold.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the checkout never reached its charge")
	}
	h.order = k.buyer.latestOrder(t).Id
	return h
}

// release lets the charge go on and waits for the checkout's answer.
func (h *heldCheckout) release(t *testing.T) {
	t.Helper()
	h.hold.release <- true
	select {
	case status := <-h.done:
		if status != http.StatusCreated {
			t.Fatalf("the held checkout answered %d, want 201", status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held checkout did not answer")
	}
}
