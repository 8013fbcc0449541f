package checkout

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
)

// The saga's behaviour against the real services is TestSagaAdvance and
// TestSagaWedges (aggregator/saga_*_test.go, which have the harness that
// starts them); these are the rules that need no service.

func TestNextRefund(t *testing.T) {
	order := uuid.MustParse("0192f0a0-0000-7000-8000-000000000001")
	refund := func(s payment.RefundStatus) payment.Refund { return payment.Refund{Status: s} }
	tests := []struct {
		name       string
		p          payment.Payment
		key        string
		amount     int64
		refundable bool
	}{
		{"first attempt, all of it", payment.Payment{Status: payment.PaymentStatusSucceeded, Amount: 2000},
			"refund-" + order.String() + "-1", 2000, true},
		{"after a partial refund, the rest", payment.Payment{Status: payment.PaymentStatusPartiallyRefunded, Amount: 2000, AmountRefunded: 500,
			Refunds: []payment.Refund{refund(payment.RefundStatusSucceeded)}}, "refund-" + order.String() + "-2", 1500, true},
		{"after a refusal, a new attempt", payment.Payment{Status: payment.PaymentStatusSucceeded, Amount: 2000,
			Refunds: []payment.Refund{refund(payment.RefundStatusFailed)}}, "refund-" + order.String() + "-2", 2000, true},
		{"refunded: nothing", payment.Payment{Status: payment.PaymentStatusRefunded, Amount: 2000, AmountRefunded: 2000,
			Refunds: []payment.Refund{refund(payment.RefundStatusSucceeded)}}, "refund-" + order.String() + "-2", 0, false},
		{"failed: nothing", payment.Payment{Status: payment.PaymentStatusFailed, Amount: 2000}, "refund-" + order.String() + "-1", 2000, false},
	}
	for _, tt := range tests {
		key, amount, ok := nextRefund(order, tt.p)
		if key != tt.key || amount != tt.amount || ok != tt.refundable {
			t.Errorf("%s: got %s %d %t, want %s %d %t", tt.name, key, amount, ok, tt.key, amount, tt.refundable)
		}
	}
}

func TestLineIndex(t *testing.T) {
	tests := []struct {
		field string
		n     int
		ok    bool
	}{
		{"lines[0].quantity", 0, true},
		{"lines[12].product_id", 12, true},
		{"lines[-1].quantity", 0, false},
		{"lines[x].quantity", 0, false},
		{"lines", 0, false},
		{"order_id", 0, false},
	}
	for _, tt := range tests {
		n, ok := lineIndex(tt.field)
		if ok != tt.ok || (ok && n != tt.n) {
			t.Errorf("lineIndex(%q) = %d, %t; want %d, %t", tt.field, n, ok, tt.n, tt.ok)
		}
	}
}

func TestOutOfStockReason(t *testing.T) {
	e := &OutOfStock{Lines: []Shortage{{Index: 1, Field: "lines[1].quantity", Detail: "Mug: only 2 available"}, {Index: -1, Field: "lines", Detail: "?"}}}
	if got := e.reason(); got != "out of stock: Mug: only 2 available" {
		t.Errorf("got %q", got)
	}
	if got := truncate(strings.Repeat("é", 400)); len(got) > 500 || !strings.HasSuffix(got, "...") {
		t.Errorf("truncate: got %d bytes %q…", len(got), got[:10])
	}
}
