package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/orders"
)

// legal is the order state machine as the issue and the README state it,
// written out here rather than read from the code, so that a change to the
// code's table that is not also made here fails the test.
var legal = map[[2]string]bool{
	{"pending", "reserved"}: true, {"reserved", "paid"}: true, {"paid", "confirmed"}: true,
	{"pending", "cancel_requested"}: true, {"reserved", "cancel_requested"}: true,
	{"paid", "cancel_requested"}: true, {"confirmed", "cancel_requested"}: true,
	{"pending", "failed"}: true, {"reserved", "failed"}: true, {"paid", "failed"}: true,
	{"pending", "cancelled"}: true, {"reserved", "cancelled"}: true, {"cancel_requested", "cancelled"}: true,
	{"confirmed", "refunded"}: true, {"cancel_requested", "refunded"}: true,
}

var allStatuses = []string{"pending", "reserved", "paid", "confirmed", "cancel_requested", "failed", "cancelled", "refunded"}

// pathTo is a legal way from pending to each status.
var pathTo = map[string][]string{
	"pending":          nil,
	"reserved":         {"reserved"},
	"paid":             {"reserved", "paid"},
	"confirmed":        {"reserved", "paid", "confirmed"},
	"cancel_requested": {"reserved", "paid", "confirmed", "cancel_requested"},
	"failed":           {"reserved", "failed"},
	"cancelled":        {"cancelled"},
	"refunded":         {"reserved", "paid", "confirmed", "refunded"},
}

// TestStateMachine is acceptance 1: every (from, to) pair of statuses,
// through the internal transitions endpoint. A legal transition is 200 and
// recorded in the history; an illegal one is 409 problem+json naming both
// statuses and changes nothing; asking for the current status is a 200
// no-op that records nothing.
func TestStateMachine(t *testing.T) {
	t.Parallel()
	// Every status of the code has its rows here.
	var known []string
	for _, st := range orders.Statuses {
		known = append(known, string(st))
	}
	if !slices.Equal(known, allStatuses) {
		t.Fatalf("the code has statuses %v, the test %v: add the new ones to legal and pathTo", known, allStatuses)
	}
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			t.Run(from+"→"+to, func(t *testing.T) {
				t.Parallel()
				o := s.newOrder(t, buyer, line{seller: seller, unitPrice: 500, quantity: 1})
				for _, step := range pathTo[from] {
					s.transition(t, o.Id, step, "because").Want(t, http.StatusOK)
				}
				before := s.do(t, "GET", "/internal/orders/"+o.Id.String(), request{}).Want(t, http.StatusOK).order(t)
				if string(before.Status) != from {
					t.Fatalf("got status %s after the path, want %s", before.Status, from)
				}
				r := s.transition(t, o.Id, to, "because")
				after := s.do(t, "GET", "/internal/orders/"+o.Id.String(), request{}).Want(t, http.StatusOK).order(t)
				switch {
				case from == to:
					r.Want(t, http.StatusOK)
					if got := r.order(t); got.Status != before.Status || len(got.History) != len(before.History) || !got.UpdatedAt.Equal(before.UpdatedAt) {
						t.Errorf("got %s with %d history entries (updated %s), want %s unchanged with %d (updated %s)",
							got.Status, len(got.History), got.UpdatedAt, before.Status, len(before.History), before.UpdatedAt)
					}
				case legal[[2]string{from, to}]:
					got := r.Want(t, http.StatusOK).order(t)
					if string(got.Status) != to || len(got.History) != len(before.History)+1 {
						t.Fatalf("got %s with %d history entries, want %s with %d", got.Status, len(got.History), to, len(before.History)+1)
					}
					last := got.History[len(got.History)-1]
					if last.From == nil || string(*last.From) != from || string(last.To) != to || last.Reason == nil || *last.Reason != "because" {
						t.Errorf("got last history entry %+v, want %s → %s because", last, from, to)
					}
				default:
					p := r.Want(t, http.StatusConflict).Problem(t)
					if !strings.HasSuffix(p.Type, "/illegal-transition") {
						t.Errorf("got problem type %q, want …/illegal-transition", p.Type)
					}
					if want := from + " → " + to; !strings.Contains(p.Detail, want) {
						t.Errorf("got detail %q, want it to name %q", p.Detail, want)
					}
					if after.Status != before.Status || len(after.History) != len(before.History) {
						t.Errorf("got %s with %d history entries after a refused transition, want %s with %d",
							after.Status, len(after.History), before.Status, len(before.History))
					}
				}
			})
		}
	}
}

// TestStateMachineSideRules: the reason rule, the deliveries a
// confirmation creates (one per seller, once), and a confirmation repeated
// after the order moved on.
func TestStateMachineSideRules(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	sellerA, sellerB := s.user(t, "seller", true), s.user(t, "seller", true)

	t.Run("reason required", func(t *testing.T) {
		t.Parallel()
		for _, to := range []string{"failed", "cancelled"} {
			o := s.newOrder(t, buyer, line{seller: sellerA, unitPrice: 100, quantity: 1})
			p := s.transition(t, o.Id, to, "").Want(t, http.StatusBadRequest).Problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != "reason" {
				t.Errorf("to %s without reason: got errors %+v, want one naming reason", to, p.Errors)
			}
			s.transition(t, o.Id, to, "   ").Want(t, http.StatusBadRequest)
			got := s.transition(t, o.Id, to, "card declined").Want(t, http.StatusOK).order(t)
			if got.StatusReason == nil || *got.StatusReason != "card declined" {
				t.Errorf("got status_reason %v, want card declined", got.StatusReason)
			}
		}
	})

	t.Run("deliveries at confirmation", func(t *testing.T) {
		t.Parallel()
		o := s.newOrder(t, buyer,
			line{seller: sellerA, unitPrice: 100, quantity: 1},
			line{seller: sellerB, unitPrice: 200, quantity: 2},
			line{seller: sellerA, unitPrice: 300, quantity: 3})
		paid := s.transition(t, o.Id, "reserved", "").Want(t, http.StatusOK).order(t)
		paid = s.transition(t, paid.Id, "paid", "").Want(t, http.StatusOK).order(t)
		if len(paid.Deliveries) != 0 {
			t.Fatalf("got %d deliveries before confirmation, want none", len(paid.Deliveries))
		}
		got := s.transition(t, o.Id, "confirmed", "").Want(t, http.StatusOK).order(t)
		again := s.transition(t, o.Id, "confirmed", "").Want(t, http.StatusOK).order(t)
		var sellers []string
		for _, d := range again.Deliveries {
			sellers = append(sellers, d.SellerId.String())
			if d.Status != "preparing" || len(d.History) != 1 || d.History[0].Status != "preparing" {
				t.Errorf("got delivery %+v, want preparing with a one-step history", d)
			}
		}
		slices.Sort(sellers)
		want := []string{sellerA.ID.String(), sellerB.ID.String()}
		slices.Sort(want)
		if !slices.Equal(sellers, want) || len(got.Deliveries) != 2 {
			t.Errorf("got deliveries for sellers %v, want one each for %v", sellers, want)
		}
		if n := s.count(t, `SELECT count(*) FROM outbox_messages`); n < 3 {
			t.Errorf("got %d outbox messages, want at least the confirmation and two new-sale emails", n)
		}
		// Repeating an earlier step once the order moved on is a conflict,
		// not a no-op: the saga must not believe it reserved again.
		p := s.transition(t, o.Id, "paid", "").Want(t, http.StatusConflict).Problem(t)
		if !strings.Contains(p.Detail, "confirmed → paid") {
			t.Errorf("got detail %q, want it to name confirmed → paid", p.Detail)
		}
	})

	t.Run("unknown order", func(t *testing.T) {
		t.Parallel()
		r := s.transition(t, uuid.New(), "reserved", "")
		r.Want(t, http.StatusNotFound).Problem(t)
	})
}
