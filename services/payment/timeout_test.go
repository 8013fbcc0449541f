package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestTimeoutThenReconciled is acceptance 3. The slow card makes the
// processor answer after the service gave up (PAYMENT_PROCESSOR_TIMEOUT
// 300ms, SANDBOX_SLOW_DELAY 2s), though the charge is made: the service
// answers 202 with the payment pending. The caller retries with the same
// key while the processor is still at it: 202 again, no second charge.
// The reconciler asks the processor by key until it knows, and settles the
// payment succeeded; the caller's next retry gets 201, then replays; the
// processor counted one charge.
func TestTimeoutThenReconciled(t *testing.T) {
	t.Parallel()
	s := startService(t,
		withEnv("PAYMENT_PROCESSOR_TIMEOUT", "300ms"),
		withEnv("PAYMENT_IDEMPOTENCY_LEASE", "2s"),
		withEnv("SANDBOX_SLOW_DELAY", "2s"))
	order := newOrderID()
	body := payReq(order, 12345, "4000000000000077")

	var first payment
	r := s.pay(t, "slow", body, http.StatusAccepted)
	r.Decode(t, &first)
	if first.Status != "pending" || r.Header.Get("Retry-After") == "" || r.Header.Get("Location") != "/internal/payments/"+first.ID {
		t.Fatalf("got status %q, Retry-After %q, Location %q; want pending, a delay and the payment's URL",
			first.Status, r.Header.Get("Retry-After"), r.Header.Get("Location"))
	}

	// The caller retries at once: the processor is still processing the
	// charge of this payment's key, so the outcome is still unknown.
	var retried payment
	s.pay(t, "slow", body, http.StatusAccepted).Decode(t, &retried)
	if retried.ID != first.ID {
		t.Errorf("the retry made payment %s, want the same payment %s", retried.ID, first.ID)
	}
	if c := s.counts(t); c.Charges != 1 {
		t.Fatalf("after the retry the sandbox made %d charges, want 1", c.Charges)
	}

	// The reconciler settles it, without the caller.
	var settled payment
	eventually(t, "the reconciler settles the payment", func() bool {
		settled = s.get(t, first.ID)
		return settled.Status != "pending"
	})
	if settled.Status != "succeeded" || settled.Reference == "" {
		t.Fatalf("got status %q reference %q, want succeeded with the charge's id", settled.Status, settled.Reference)
	}
	if !logged(s, "payment reconciled") {
		t.Error("the payment was not settled by the reconciler")
	}

	// The caller's next retry learns the outcome; the one after replays it.
	var final payment
	done := s.pay(t, "slow", body, http.StatusCreated)
	done.Decode(t, &final)
	if final.ID != first.ID || final.Status != "succeeded" {
		t.Errorf("got payment %s %s, want %s succeeded", final.ID, final.Status, first.ID)
	}
	replay := s.pay(t, "slow", body, http.StatusCreated)
	if string(replay.Body) != string(done.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("got %s, want the replay of %s", replay.Body, done.Body)
	}

	c := s.counts(t)
	if c.Charges != 1 || c.ChargesByReference[order] != 1 || c.ChargesByIdempotencyKey["payment-"+first.ID] != 1 {
		t.Errorf("the sandbox made %d charges (by key %v), want exactly 1, under the payment's key", c.Charges, c.ChargesByIdempotencyKey)
	}
}

func logged(s *service, msg string) bool {
	return strings.Contains(s.Logs.String(), `"@message":"`+msg+`"`)
}
