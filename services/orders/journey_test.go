package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/orders/internal/orders"
)

// TestDeliveryJourney is acceptance 4, on the real service and the mail
// sink: confirm → shipped → in transit → delivered sends exactly the
// expected emails, in order, each once — with repeated steps along the way
// (the saga's confirmation, the seller's "shipped"), and with the service,
// and so its outbox relay, stopped and restarted while an email is still
// undelivered (the sink refusing it meanwhile). The buyer's tracking
// history lists every step, timestamped, in order.
func TestDeliveryJourney(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	o := s.newOrder(t, buyer, line{seller: seller, unitPrice: 2599, quantity: 2})
	ref := orders.Ref(o.Id)

	o = s.confirm(t, o.Id)
	s.transition(t, o.Id, "confirmed", "").Want(t, http.StatusOK) // the saga retries its last step
	d := deliveryOf(t, o, seller)

	s.moveDelivery(t, seller, d.Id, "shipped", "La Poste", "6A12345678901").Want(t, http.StatusOK)
	s.moveDelivery(t, seller, d.Id, "shipped", "La Poste", "6A12345678901").Want(t, http.StatusOK) // a double click
	s.drainOutbox(t)

	// Mailjet is down when the parcel enters transit, and the service
	// restarts before it comes back: the email waits in the outbox.
	if err := s.sink.FailNext(1_000_000, http.StatusServiceUnavailable); err != nil {
		t.Fatal(err)
	}
	s.moveDelivery(t, seller, d.Id, "in_transit", "", "").Want(t, http.StatusOK)
	waitFor(t, "a failed delivery attempt", func() bool {
		return s.count(t, `SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND attempts > 0`) == 1
	})
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.sink.FailNext(0, http.StatusServiceUnavailable); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	s.moveDelivery(t, seller, d.Id, "delivered", "", "").Want(t, http.StatusOK)
	s.moveDelivery(t, seller, d.Id, "delivered", "", "").Want(t, http.StatusOK)

	got := s.emails(t, buyer.Email)
	want := []string{
		"Your order " + ref + " is confirmed",
		"Your order " + ref + " has shipped",
		"Your order " + ref + " is on its way",
		"Your order " + ref + " was delivered",
	}
	if diff := cmp.Diff(want, subjects(got)); diff != "" {
		t.Fatalf("buyer's emails (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"New sale: order " + ref}, subjects(s.emails(t, seller.Email))); diff != "" {
		t.Errorf("seller's emails (-want +got):\n%s", diff)
	}
	customIDs := map[string]bool{}
	for _, m := range got {
		customIDs[m.Message.CustomID] = true
	}
	if len(customIDs) != len(got) {
		t.Errorf("got %d distinct CustomIDs for %d emails, want one each", len(customIDs), len(got))
	}
	for _, m := range got[1:] {
		if !strings.Contains(m.Message.TextPart, "La Poste") || !strings.Contains(m.Message.TextPart, "6A12345678901") ||
			!strings.Contains(m.Message.HTMLPart, "6A12345678901") {
			t.Errorf("email %q does not give the carrier and tracking number:\n%s", m.Message.Subject, m.Message.TextPart)
		}
	}
	if text := got[0].Message.TextPart; !strings.Contains(text, "51.98 EUR") || !strings.Contains(text, "https://shop.example.com/orders/"+o.Id.String()) {
		t.Errorf("the confirmation does not give the total and the order's link:\n%s", text)
	}
	if n := s.count(t, `SELECT count(*) FROM outbox_messages`); n != 5 {
		t.Errorf("got %d outbox messages, want 5 (one per event)", n)
	}

	var tracking httpapi.Tracking
	s.do(t, "GET", "/v1/orders/"+o.Id.String()+"/tracking", request{Token: buyer.Token}).Want(t, http.StatusOK).DecodeStrict(t, &tracking)
	if len(tracking.Deliveries) != 1 || tracking.OrderStatus != "confirmed" {
		t.Fatalf("got tracking %+v, want one delivery of a confirmed order", tracking)
	}
	td := tracking.Deliveries[0]
	var steps []string
	for i, e := range td.History {
		steps = append(steps, string(e.Status))
		if e.At.IsZero() || (i > 0 && e.At.Before(td.History[i-1].At)) {
			t.Errorf("step %d (%s) at %s, want a time not before the previous step", i, e.Status, e.At)
		}
		if e.Status != "preparing" && (e.Carrier == nil || *e.Carrier != "La Poste" || e.TrackingNumber == nil || *e.TrackingNumber != "6A12345678901") {
			t.Errorf("step %s carries carrier %v tracking %v, want La Poste 6A12345678901", e.Status, e.Carrier, e.TrackingNumber)
		}
	}
	if diff := cmp.Diff([]string{"preparing", "shipped", "in_transit", "delivered"}, steps); diff != "" {
		t.Errorf("tracking history (-want +got):\n%s", diff)
	}
	if td.Status != "delivered" || *td.TrackingNumber != "6A12345678901" {
		t.Errorf("got delivery %s tracking %v, want delivered with its tracking number", td.Status, td.TrackingNumber)
	}

	// Returned closes the journey; nothing leaves it.
	s.moveDelivery(t, seller, d.Id, "returned", "", "").Want(t, http.StatusOK)
	s.moveDelivery(t, seller, d.Id, "in_transit", "", "").Want(t, http.StatusConflict).Problem(t)
	if got := subjects(s.emails(t, buyer.Email)); got[len(got)-1] != "Your order "+ref+" was returned to the seller" || len(got) != 5 {
		t.Errorf("got emails %v, want a fifth saying the parcel was returned", got)
	}
}

// TestDeliveryMoves: the delivery state machine, every (from, to) pair,
// as TestStateMachine does for orders. A shipped delivery keeps its
// carrier and tracking number: repeating "shipped" with others is a 409.
func TestDeliveryMoves(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	statuses := []string{"preparing", "shipped", "in_transit", "delivered", "returned"}
	legalMoves := map[[2]string]bool{
		{"preparing", "shipped"}: true, {"shipped", "in_transit"}: true, {"in_transit", "delivered"}: true,
		{"shipped", "returned"}: true, {"in_transit", "returned"}: true, {"delivered", "returned"}: true,
	}
	path := map[string][]string{
		"preparing":  nil,
		"shipped":    {"shipped"},
		"in_transit": {"shipped", "in_transit"},
		"delivered":  {"shipped", "in_transit", "delivered"},
		"returned":   {"shipped", "returned"},
	}
	move := func(id uuid.UUID, status string) response {
		body := map[string]string{"status": status}
		if status == "shipped" {
			body["carrier"], body["tracking_number"] = "DHL", "JJD000390007"
		}
		return s.do(t, "POST", "/v1/sales/deliveries/"+id.String()+"/status", request{Token: seller.Token, Body: body})
	}
	for _, from := range statuses {
		for _, to := range statuses {
			t.Run(from+"→"+to, func(t *testing.T) {
				t.Parallel()
				d := deliveryOf(t, s.confirmedOrder(t, buyer, seller), seller)
				for _, step := range path[from] {
					move(d.Id, step).Want(t, http.StatusOK)
				}
				r := move(d.Id, to)
				var after httpapi.Delivery
				switch {
				case from == to:
					r.Want(t, http.StatusOK).DecodeStrict(t, &after)
					if len(after.History) != len(path[from])+1 {
						t.Errorf("got %d steps after a repeat, want %d", len(after.History), len(path[from])+1)
					}
				case legalMoves[[2]string{from, to}]:
					r.Want(t, http.StatusOK).DecodeStrict(t, &after)
					if string(after.Status) != to || string(after.History[len(after.History)-1].Status) != to {
						t.Errorf("got %s with last step %s, want %s", after.Status, after.History[len(after.History)-1].Status, to)
					}
				default:
					p := r.Want(t, http.StatusConflict).Problem(t)
					if !strings.Contains(p.Detail, from+" → "+to) || !strings.HasSuffix(p.Type, "/illegal-transition") {
						t.Errorf("got problem %+v, want illegal-transition naming %s → %s", p, from, to)
					}
				}
			})
		}
	}

	t.Run("shipped again with another tracking number", func(t *testing.T) {
		t.Parallel()
		d := deliveryOf(t, s.confirmedOrder(t, buyer, seller), seller)
		move(d.Id, "shipped").Want(t, http.StatusOK)
		p := s.moveDelivery(t, seller, d.Id, "shipped", "DHL", "OTHER").Want(t, http.StatusConflict).Problem(t)
		if !strings.Contains(p.Detail, "JJD000390007") {
			t.Errorf("got detail %q, want it to give the tracking number on record", p.Detail)
		}
	})
}

// waitFor polls cond until it holds, for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
