package main

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDeclines is acceptance 5: a declined card, insufficient funds or a
// processing error make the payment failed with a clear reason, and the
// caller gets 402 problem+json whose type says why.
func TestDeclines(t *testing.T) {
	t.Parallel()
	s := startService(t)
	tests := []struct {
		card    string
		code    string
		message string
	}{
		{"4000000000000002", "card-declined", "the card was declined"},
		{"4000000000009995", "insufficient-funds", "the card has insufficient funds"},
		{"4000000000000119", "processing-error", "the processor could not process the card"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			order := newOrderID()
			r := s.do(t, "POST", "/internal/payments", "decline-"+tt.code, payReq(order, 3100, tt.card))
			p := r.WantProblem(t, http.StatusPaymentRequired, tt.code)
			if !strings.Contains(p.Detail, tt.message) || !strings.Contains(p.Detail, order) {
				t.Errorf("got detail %q, want it to name the order and say %q", p.Detail, tt.message)
			}
			var list struct{ Items []payment }
			s.do(t, "GET", "/internal/payments?order_id="+order, "", nil).Want(t, http.StatusOK).Decode(t, &list)
			if len(list.Items) != 1 {
				t.Fatalf("got %d payments for the order, want 1", len(list.Items))
			}
			got := list.Items[0]
			want := payment{
				ID: got.ID, OrderID: order, Amount: 3100, Currency: "EUR", Status: "failed",
				Card:      cardView{Brand: "visa", Last4: tt.card[12:], ExpMonth: 12, ExpYear: expYear},
				Reference: got.Reference, FailureCode: tt.code, FailureMessage: got.FailureMessage, Refunds: []refund{},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("payment mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(got.FailureMessage, tt.message) || got.Reference == "" {
				t.Errorf("got failure message %q reference %q, want %q and the processor's charge", got.FailureMessage, got.Reference, tt.message)
			}
			if r.Header.Get("Location") != "/internal/payments/"+got.ID {
				t.Errorf("got Location %q, want the payment's URL", r.Header.Get("Location"))
			}
		})
	}
}

// TestSucceededPayment: the answer carries the payment, readable by id and
// by order, with only the brand, last 4 digits and expiry of the card.
func TestSucceededPayment(t *testing.T) {
	t.Parallel()
	s := startService(t)
	order := newOrderID()
	var p payment
	r := s.pay(t, "ok", payReq(order, 4999, "5555555555554444"), http.StatusCreated)
	r.Decode(t, &p)
	want := payment{ID: p.ID, OrderID: order, Amount: 4999, Currency: "EUR", Status: "succeeded",
		Card: cardView{Brand: "mastercard", Last4: "4444", ExpMonth: 12, ExpYear: expYear}, Reference: p.Reference, Refunds: []refund{}}
	if diff := cmp.Diff(want, p); diff != "" || p.Reference == "" {
		t.Errorf("payment mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, s.get(t, p.ID)); diff != "" {
		t.Errorf("GET by id differs (-created +read):\n%s", diff)
	}
	var list struct{ Items []payment }
	s.do(t, "GET", "/internal/payments?order_id="+order, "", nil).Want(t, http.StatusOK).Decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != p.ID {
		t.Errorf("got %+v by order, want the payment", list.Items)
	}
	s.do(t, "GET", "/internal/payments?order_id="+newOrderID(), "", nil).Want(t, http.StatusOK).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("got %d payments for an order without any, want 0", len(list.Items))
	}
	// One payment per order, whatever the key.
	s.do(t, "POST", "/internal/payments", "another-key", payReq(order, 4999, "5555555555554444")).
		WantProblem(t, http.StatusConflict, "payment-exists")
}

// TestValidation: invalid input is 400 naming every field at fault,
// checked at the boundary: the processor is never called.
func TestValidation(t *testing.T) {
	t.Parallel()
	s := startService(t)
	now := time.Now().UTC()
	lastMonth := now.AddDate(0, -1, 0)
	with := func(f func(b, card map[string]any)) map[string]any {
		b := payReq(newOrderID(), 1000, "4242424242424242")
		f(b, b["card"].(map[string]any))
		return b
	}
	tests := []struct {
		name   string
		key    string
		body   any
		fields []string
	}{
		{"luhn", "k", with(func(b, c map[string]any) { c["number"] = "4242424242424241" }), []string{"card.number"}},
		{"number with spaces", "k", with(func(b, c map[string]any) { c["number"] = "4242 4242 4242 4242" }), []string{"card.number"}},
		{"number too short", "k", with(func(b, c map[string]any) { c["number"] = "42424242" }), []string{"card.number"}},
		{"expired last year", "k", with(func(b, c map[string]any) { c["exp_year"] = now.Year() - 1 }), []string{"card.exp_year"}},
		{"expired last month", "k", with(func(b, c map[string]any) {
			c["exp_month"], c["exp_year"] = int(lastMonth.Month()), lastMonth.Year()
		}), []string{lastMonthField(now)}},
		{"month 13", "k", with(func(b, c map[string]any) { c["exp_month"] = 13 }), []string{"card.exp_month"}},
		{"cvc too short", "k", with(func(b, c map[string]any) { c["cvc"] = "12" }), []string{"card.cvc"}},
		{"cvc letters", "k", with(func(b, c map[string]any) { c["cvc"] = "12a" }), []string{"card.cvc"}},
		{"amount zero", "k", with(func(b, c map[string]any) { b["amount"] = 0 }), []string{"amount"}},
		{"amount negative", "k", with(func(b, c map[string]any) { b["amount"] = -5 }), []string{"amount"}},
		{"currency lower case", "k", with(func(b, c map[string]any) { b["currency"] = "eur" }), []string{"currency"}},
		{"currency unknown", "k", with(func(b, c map[string]any) { b["currency"] = "XYZ" }), []string{"currency"}},
		{"no order", "k", with(func(b, c map[string]any) { delete(b, "order_id") }), []string{"order_id"}},
		{"no key", "", with(func(b, c map[string]any) {}), []string{"Idempotency-Key"}},
		{"everything", "k", with(func(b, c map[string]any) {
			b["amount"], b["currency"], c["number"], c["cvc"] = 0, "", "1", ""
		}), []string{"amount", "card.cvc", "card.number", "currency"}},
		{"unknown field", "k", with(func(b, c map[string]any) { c["pin"] = "0000" }), []string{"pin"}},
		{"amount as a float", "k", `{"order_id":"` + newOrderID() + `","amount":10.5,"currency":"EUR","card":{}}`, []string{"amount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := s.do(t, "POST", "/internal/payments", tt.key, tt.body).WantProblem(t, http.StatusBadRequest, "invalid-request")
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields at fault (-want +got):\n%s\n%s", diff, p.Detail)
			}
		})
	}
	t.Cleanup(func() {
		if c := s.counts(t); c.Charges != 0 {
			t.Errorf("the processor was called %d times, want never", c.Charges)
		}
	})
}

// lastMonthField is the field at fault for a card that expired last month:
// in January that is last year's December.
func lastMonthField(now time.Time) string {
	if now.Month() == time.January {
		return "card.exp_year"
	}
	return "card.exp_month"
}
