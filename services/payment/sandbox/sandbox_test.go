package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mylittleshopping/shop/services/payment/sandbox"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// newSandbox serves a sandbox configured from env the way
// cmd/sandbox-processor does: through config.Load and httpx's middleware.
func newSandbox(t *testing.T, env map[string]string) (*sandbox.Processor, string) {
	t.Helper()
	var cfg sandbox.Config
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	log := logging.ForTest(t)
	p, err := sandbox.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.Middleware(log, p))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func do(t *testing.T, method, url, apiKey, idemKey, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

var year = time.Now().Year() + 2

func chargeBody(number string, amount int64) string {
	return fmt.Sprintf(`{"amount":%d,"currency":"EUR","reference":"order-1","card":{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}}`, amount, number, year)
}

func TestTestCardsDecide(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, nil)
	tests := []struct {
		number, status, failure string
	}{
		{sandbox.CardSuccess, "succeeded", ""},
		{"5555555555554444", "succeeded", ""},
		{sandbox.CardDeclined, "failed", "card_declined"},
		{sandbox.CardInsufficientFunds, "failed", "insufficient_funds"},
		{sandbox.CardProcessingError, "failed", "processing_error"},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			t.Parallel()
			code, _, b := do(t, "POST", url+"/v1/charges", "sk", "", chargeBody(tt.number, 100))
			var ch sandbox.Charge
			if err := json.Unmarshal(b, &ch); err != nil || code != http.StatusCreated {
				t.Fatalf("got %d %s, want 201 and a charge", code, b)
			}
			if ch.Status != tt.status || ch.FailureCode != tt.failure || ch.CardLast4 != tt.number[len(tt.number)-4:] {
				t.Errorf("got %+v, want status %s failure %q", ch, tt.status, tt.failure)
			}
			if strings.Contains(string(b), tt.number) || strings.Contains(string(b), `"123"`) {
				t.Errorf("the answer %s repeats the card number or CVC", b)
			}
		})
	}
}

func TestValidatesCards(t *testing.T) {
	t.Parallel()
	p, url := newSandbox(t, nil)
	tests := []struct {
		name, body string
		fields     []string
	}{
		{"luhn", chargeBody("4242424242424241", 100), []string{"card.number"}},
		{"expired", strings.Replace(chargeBody(sandbox.CardSuccess, 100), fmt.Sprint(year), "2001", 1), []string{"card.exp_year"}},
		{"cvc", strings.Replace(chargeBody(sandbox.CardSuccess, 100), `"cvc":"123"`, `"cvc":"12345"`, 1), []string{"card.cvc"}},
		{"amount and currency", strings.Replace(chargeBody(sandbox.CardSuccess, 0), "EUR", "eu", 1), []string{"amount", "currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, b := do(t, "POST", url+"/v1/charges", "sk", "", tt.body)
			var prob httpx.Problem
			_ = json.Unmarshal(b, &prob)
			var got []string
			for _, e := range prob.Errors {
				got = append(got, e.Field)
			}
			sort.Strings(got)
			if code != http.StatusBadRequest || !strings.HasSuffix(prob.Type, "/invalid-card") || !cmp.Equal(got, tt.fields) {
				t.Errorf("got %d %s, want 400 invalid-card naming %v", code, b, tt.fields)
			}
		})
	}
	t.Cleanup(func() {
		if n := p.Counts().Charges; n != 0 {
			t.Errorf("got %d charges from invalid requests, want 0", n)
		}
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, map[string]string{"SANDBOX_API_KEY": "sk_right"})
	for key, want := range map[string]int{"": 401, "sk_wrong": 401, "sk_right": 201} {
		if code, _, b := do(t, "POST", url+"/v1/charges", key, "", chargeBody(sandbox.CardSuccess, 100)); code != want {
			t.Errorf("key %q: got %d %s, want %d", key, code, b, want)
		}
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	p, url := newSandbox(t, map[string]string{"SANDBOX_SLOW_DELAY": "1s"})
	code, _, first := do(t, "POST", url+"/v1/charges", "sk", "k1", chargeBody(sandbox.CardSuccess, 100))
	code2, h, again := do(t, "POST", url+"/v1/charges", "sk", "k1", chargeBody(sandbox.CardSuccess, 100))
	if code != 201 || code2 != 201 || string(first) != string(again) || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("got %d %s then %d %s (replayed %q), want the same charge replayed", code, first, code2, again, h.Get("Idempotent-Replayed"))
	}
	if code, _, b := do(t, "POST", url+"/v1/charges", "sk", "k1", chargeBody(sandbox.CardSuccess, 101)); code != 422 {
		t.Errorf("same key, other body: got %d %s, want 422", code, b)
	}

	// The slow card: made at once, pending until the delay, in use for a
	// duplicate meanwhile.
	slowDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/v1/charges", strings.NewReader(chargeBody(sandbox.CardSlow, 100)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk")
		req.Header.Set("Idempotency-Key", "slow")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- 0
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Counts().ChargesByIdempotencyKey["slow"] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, _, found := do(t, "GET", url+"/v1/charges?idempotency_key=slow", "sk", "", "")
	if !strings.Contains(string(found), `"status":"pending"`) {
		t.Errorf("got %s while the slow charge is processed, want it pending", found)
	}
	if code, _, b := do(t, "POST", url+"/v1/charges", "sk", "slow", chargeBody(sandbox.CardSlow, 100)); code != 409 {
		t.Errorf("duplicate while processing: got %d %s, want 409", code, b)
	}
	if code := <-slowDone; code != http.StatusCreated {
		t.Errorf("the slow charge answered %d after its delay, want 201", code)
	}
	_, _, found = do(t, "GET", url+"/v1/charges?idempotency_key=slow", "sk", "", "")
	if !strings.Contains(string(found), `"status":"succeeded"`) {
		t.Errorf("got %s after the delay, want it succeeded", found)
	}
	if c := p.Counts(); c.Charges != 2 || c.ChargesByIdempotencyKey["k1"] != 1 || c.ChargesByIdempotencyKey["slow"] != 1 {
		t.Errorf("got counts %+v, want one charge per key", c)
	}
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	p, url := newSandbox(t, nil)
	var ok, failed, refusing sandbox.Charge
	_, _, b := do(t, "POST", url+"/v1/charges", "sk", "", chargeBody(sandbox.CardSuccess, 1000))
	_ = json.Unmarshal(b, &ok)
	_, _, b = do(t, "POST", url+"/v1/charges", "sk", "", chargeBody(sandbox.CardDeclined, 1000))
	_ = json.Unmarshal(b, &failed)
	_, _, b = do(t, "POST", url+"/v1/charges", "sk", "", chargeBody(sandbox.CardRefundRefused, 1000))
	_ = json.Unmarshal(b, &refusing)
	if refusing.Status != "succeeded" {
		t.Fatalf("charge of the refund-refusing card is %q, want succeeded", refusing.Status)
	}
	refund := func(key, charge string, amount int) (int, string) {
		code, _, b := do(t, "POST", url+"/v1/refunds", "sk", key, fmt.Sprintf(`{"charge_id":%q,"amount":%d}`, charge, amount))
		return code, string(b)
	}
	tests := []struct {
		name, key, charge string
		amount, status    int
		slug              string
	}{
		{"partial", "r1", ok.ID, 400, 201, ""},
		{"replayed", "r1", ok.ID, 400, 201, ""},
		{"key with another amount", "r1", ok.ID, 401, 422, "idempotency-key-reused"},
		{"above the rest", "r2", ok.ID, 601, 409, "amount-too-large"},
		{"the rest", "r3", ok.ID, 600, 201, ""},
		{"failed charge", "r4", failed.ID, 1, 409, "charge-not-refundable"},
		{"no such charge", "r5", "ch_nope", 1, 404, "not-found"},
		{"refund-refusing card", "r6", refusing.ID, 1000, 409, "refund-declined"},
		{"refund-refusing card, new key", "r7", refusing.ID, 1, 409, "refund-declined"},
	}
	for _, tt := range tests {
		code, body := refund(tt.key, tt.charge, tt.amount)
		if code != tt.status || !strings.Contains(body, tt.slug) {
			t.Errorf("%s: got %d %s, want %d %s", tt.name, code, body, tt.status, tt.slug)
		}
	}
	if c := p.Counts(); c.Refunds != 2 || c.RefundedByCharge[ok.ID] != 1000 {
		t.Errorf("got %d refunds, %d refunded, want 2 and 1000", c.Refunds, c.RefundedByCharge[ok.ID])
	}
}
