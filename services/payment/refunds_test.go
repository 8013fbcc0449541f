package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// paid makes a succeeded payment of amount and returns it.
func (s *service) paid(t *testing.T, amount int64) payment {
	t.Helper()
	var p payment
	s.pay(t, "pay-"+newOrderID(), payReq(newOrderID(), amount, "4242424242424242"), http.StatusCreated).Decode(t, &p)
	return p
}

func (s *service) refund(t *testing.T, paymentID, key string, amount int64) response {
	t.Helper()
	return s.do(t, "POST", "/internal/payments/"+paymentID+"/refunds", key, map[string]any{"amount": amount})
}

// TestPartialRefunds is acceptance 4: partial refunds up to the total work
// and the payment's status follows; one more unit is 409.
func TestPartialRefunds(t *testing.T) {
	t.Parallel()
	s := startService(t)
	tests := []struct {
		name     string
		refunds  []int64
		statuses []string // the payment's status after each refund
	}{
		{"partial then rest", []int64{3000, 7000}, []string{"partially_refunded", "refunded"}},
		{"three partials", []int64{1, 4999, 5000}, []string{"partially_refunded", "partially_refunded", "refunded"}},
		{"full at once", []int64{10000}, []string{"refunded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := s.paid(t, 10000)
			var sum int64
			for i, amount := range tt.refunds {
				var r refund
				s.refund(t, p.ID, fmt.Sprintf("%s-%d", p.ID, i), amount).Want(t, http.StatusCreated).Decode(t, &r)
				sum += amount
				if r.Status != "succeeded" || r.Amount != amount || r.Reference == "" {
					t.Errorf("refund %d: got %+v, want succeeded of %d with the processor's id", i, r, amount)
				}
				got := s.get(t, p.ID)
				if got.Status != tt.statuses[i] || got.AmountRefunded != sum || len(got.Refunds) != i+1 {
					t.Errorf("after refund %d: got %s, %d refunded, %d refunds; want %s, %d, %d",
						i, got.Status, got.AmountRefunded, len(got.Refunds), tt.statuses[i], sum, i+1)
				}
			}
			s.refund(t, p.ID, p.ID+"-over", 1).WantProblem(t, http.StatusConflict, "refund-exceeds-captured")
			if got := s.get(t, p.ID); got.AmountRefunded != 10000 || got.Status != "refunded" {
				t.Errorf("got %d refunded, status %s, want 10000, refunded", got.AmountRefunded, got.Status)
			}
		})
	}
}

// TestRefundAboveCaptured is acceptance 4: a refund above what is left is
// 409 and refunds nothing; so is a refund of a payment that was not
// captured, or of none at all (404).
func TestRefundAboveCaptured(t *testing.T) {
	t.Parallel()
	s := startService(t)
	p := s.paid(t, 5000)
	tests := []struct {
		name      string
		paymentID func() string
		amount    int64
		status    int
		slug      string
	}{
		{"above the total", func() string { return p.ID }, 5001, http.StatusConflict, "refund-exceeds-captured"},
		{"after a partial, above the rest", func() string {
			s.refund(t, p.ID, "partial-first", 2000).Want(t, http.StatusCreated)
			return p.ID
		}, 3001, http.StatusConflict, "refund-exceeds-captured"},
		{"declined payment", func() string {
			var list struct{ Items []payment }
			s.do(t, "GET", "/internal/payments?order_id="+declinedOrder(t, s), "", nil).Want(t, http.StatusOK).Decode(t, &list)
			return list.Items[0].ID
		}, 100, http.StatusConflict, "payment-not-captured"},
		{"unknown payment", func() string { return newOrderID() }, 100, http.StatusNotFound, "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.refund(t, tt.paymentID(), "refund-"+tt.name, tt.amount).WantProblem(t, tt.status, tt.slug)
		})
	}
	if got := s.get(t, p.ID); got.AmountRefunded != 2000 || got.Status != "partially_refunded" {
		t.Errorf("got %d refunded (%s), want 2000 partially_refunded", got.AmountRefunded, got.Status)
	}
	if c := s.counts(t); c.Refunds != 1 {
		t.Errorf("the sandbox made %d refunds, want 1", c.Refunds)
	}
}

// declinedOrder makes a declined payment and returns its order.
func declinedOrder(t *testing.T, s *service) string {
	t.Helper()
	order := newOrderID()
	s.pay(t, "declined-"+order, payReq(order, 700, "4000000000000002"), http.StatusPaymentRequired)
	return order
}

// TestRefundSameKeyOnce is acceptance 4: a refund request repeated with the
// same key refunds once — one after the other (replayed), and 20 at once.
func TestRefundSameKeyOnce(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("DATABASE_MAX_CONNS", "20"))
	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		p := s.paid(t, 8000)
		first := s.refund(t, p.ID, "refund-seq", 8000).Want(t, http.StatusCreated)
		for range 3 {
			again := s.refund(t, p.ID, "refund-seq", 8000).Want(t, http.StatusCreated)
			if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("got %s, want the replay of %s", again.Body, first.Body)
			}
		}
		if got := s.get(t, p.ID); got.AmountRefunded != 8000 || len(got.Refunds) != 1 {
			t.Errorf("got %d refunded in %d refunds, want 8000 in 1", got.AmountRefunded, len(got.Refunds))
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		p := s.paid(t, 8000)
		const n = 20
		answers := make([]response, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = s.refund(t, p.ID, "refund-conc", 3000)
			})
		}
		close(start)
		wg.Wait()
		for _, r := range answers {
			if r.Status != http.StatusCreated && r.Status != http.StatusConflict {
				t.Errorf("got %d %s, want 201 or 409", r.Status, r.Body)
			}
		}
		got := s.get(t, p.ID)
		if got.AmountRefunded != 3000 || len(got.Refunds) != 1 || got.Status != "partially_refunded" {
			t.Errorf("got %d refunded in %d refunds (%s), want 3000 in 1, partially_refunded", got.AmountRefunded, len(got.Refunds), got.Status)
		}
		c := s.counts(t)
		if n := c.RefundsByIdempotencyKey["refund-"+got.Refunds[0].ID]; n != 1 || c.RefundedByCharge[got.Reference] != 3000 {
			t.Errorf("the sandbox made %d refunds for the key, %d refunded on the charge; want 1 and 3000 (%+v)", n, c.RefundedByCharge[got.Reference], c)
		}
	})
}

// TestConcurrentRefundsNeverExceedCaptured: 10 different refunds of 3000
// at once on a payment of 10000: exactly three go through.
func TestConcurrentRefundsNeverExceedCaptured(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("DATABASE_MAX_CONNS", "20"))
	p := s.paid(t, 10000)
	const n = 10
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = s.refund(t, p.ID, fmt.Sprintf("many-%d", i), 3000) })
	}
	wg.Wait()
	ok := 0
	for _, r := range answers {
		switch {
		case r.Status == http.StatusCreated:
			ok++
		case r.Status == http.StatusConflict && strings.HasSuffix(r.Problem(t).Type, "/refund-exceeds-captured"):
		default:
			t.Errorf("got %d %s, want 201 or 409 refund-exceeds-captured", r.Status, r.Body)
		}
	}
	got := s.get(t, p.ID)
	if ok != 3 || got.AmountRefunded != 9000 || s.counts(t).RefundedByCharge[got.Reference] != 9000 {
		t.Errorf("got %d refunds through, %d refunded; want 3 and 9000", ok, got.AmountRefunded)
	}
}
