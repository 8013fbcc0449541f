package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
)

// TestCancel: a buyer's cancellation is recorded (cancel_requested) until a
// delivery ships, asked again is a no-op, and leaves the aggregator to
// finish the order as refunded (or cancelled) through the internal
// transitions; a shipped order, or a final one, cannot be cancelled; an
// order whose cancellation was asked cannot ship.
func TestCancel(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller, other := s.user(t, "seller", true), s.user(t, "seller", true)
	cancel := func(id string, body any) response {
		return s.do(t, "POST", "/v1/orders/"+id+"/cancel", request{Token: buyer.Token, Body: body})
	}

	t.Run("confirmed, then refunded by the aggregator", func(t *testing.T) {
		t.Parallel()
		o := s.confirmedOrder(t, buyer, seller, other)
		got := cancel(o.Id.String(), map[string]string{"reason": "  ordered twice "}).Want(t, http.StatusAccepted).order(t)
		if got.Status != "cancel_requested" || got.StatusReason == nil || *got.StatusReason != "ordered twice" {
			t.Fatalf("got %s (%v), want cancel_requested because ordered twice", got.Status, got.StatusReason)
		}
		again := cancel(o.Id.String(), nil).Want(t, http.StatusAccepted).order(t)
		if len(again.History) != len(got.History) {
			t.Errorf("a second cancel added history: %d entries, want %d", len(again.History), len(got.History))
		}
		// Sellers may not ship it any more; the aggregator's recovery loop
		// finds it and refunds it.
		p := s.moveDelivery(t, seller, deliveryOf(t, o, seller).Id, "shipped", "UPS", "1Z999").Want(t, http.StatusConflict).Problem(t)
		if !strings.Contains(p.Detail, "cancel_requested") {
			t.Errorf("got detail %q, want it to say the order is cancel_requested", p.Detail)
		}
		var page httpapi.OrderPage
		s.do(t, "GET", "/internal/orders?status=cancel_requested", request{}).Want(t, http.StatusOK).DecodeStrict(t, &page)
		found := false
		for _, it := range page.Items {
			found = found || it.Id == o.Id
		}
		if !found {
			t.Errorf("the recovery list of cancel_requested orders does not hold %s", o.Id)
		}
		done := s.transition(t, o.Id, "refunded", "cancelled by the buyer; refunded").Want(t, http.StatusOK).order(t)
		if done.Status != "refunded" {
			t.Errorf("got %s, want refunded", done.Status)
		}
		p = cancel(o.Id.String(), nil).Want(t, http.StatusConflict).Problem(t)
		if !strings.Contains(p.Detail, "refunded → cancel_requested") {
			t.Errorf("got detail %q, want it to name refunded → cancel_requested", p.Detail)
		}
	})

	t.Run("pending, then cancelled by the aggregator", func(t *testing.T) {
		t.Parallel()
		o := s.newOrder(t, buyer, line{seller: seller, unitPrice: 100, quantity: 1})
		cancel(o.Id.String(), nil).Want(t, http.StatusAccepted)
		// The saga, still running, cannot move it on: a cancellation wins.
		s.transition(t, o.Id, "reserved", "").Want(t, http.StatusConflict)
		got := s.transition(t, o.Id, "cancelled", "cancelled by the buyer").Want(t, http.StatusOK).order(t)
		if got.Status != "cancelled" || got.StatusReason == nil || *got.StatusReason != "cancelled by the buyer" {
			t.Errorf("got %s (%v), want cancelled", got.Status, got.StatusReason)
		}
		if got.History[1].Reason == nil || *got.History[1].Reason != "asked by the buyer" {
			t.Errorf("got history %+v, want the request recorded with its default reason", got.History)
		}
	})

	t.Run("shipped", func(t *testing.T) {
		t.Parallel()
		o := s.confirmedOrder(t, buyer, seller, other)
		s.moveDelivery(t, other, deliveryOf(t, o, other).Id, "shipped", "UPS", "1Z999").Want(t, http.StatusOK)
		p := cancel(o.Id.String(), nil).Want(t, http.StatusConflict).Problem(t)
		if !strings.HasSuffix(p.Type, "/already-shipped") {
			t.Errorf("got problem type %q, want already-shipped", p.Type)
		}
		if got := s.do(t, "GET", "/v1/orders/"+o.Id.String(), request{Token: buyer.Token}).order(t); got.Status != "confirmed" {
			t.Errorf("got %s after a refused cancel, want confirmed", got.Status)
		}
	})

	// A buyer's cancel and a seller's shipment of the same order at once:
	// exactly one of them wins, whichever runs first, every time.
	t.Run("races a shipment", func(t *testing.T) {
		t.Parallel()
		for range 15 {
			o := s.confirmedOrder(t, buyer, seller)
			d := deliveryOf(t, o, seller)
			var cancelled, shipped response
			var wg sync.WaitGroup
			wg.Go(func() { cancelled = cancel(o.Id.String(), nil) })
			wg.Go(func() { shipped = s.moveDelivery(t, seller, d.Id, "shipped", "UPS", "1Z999") })
			wg.Wait()
			switch {
			case cancelled.Status == http.StatusAccepted && shipped.Status == http.StatusConflict:
			case cancelled.Status == http.StatusConflict && shipped.Status == http.StatusOK:
			default:
				t.Fatalf("cancel got %d, ship got %d: want exactly one to win and the other 409", cancelled.Status, shipped.Status)
			}
		}
	})
}
