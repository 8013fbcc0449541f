package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/payment/migrations"
	"github.com/mylittleshopping/shop/services/payment/sandbox"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// The CVCs the tests send: four digits, so that a leak is told apart from
// the numbers logs are full of.
const (
	cvc      = "7319"
	otherCVC = "5084"
)

// secretCards are every card number the tests send, valid or not: none may
// be found in a table or a log line.
var secretCards = []string{
	sandbox.CardSuccess, sandbox.CardDeclined, sandbox.CardInsufficientFunds,
	sandbox.CardProcessingError, sandbox.CardSlow,
	"5555555555554444", "4242424242424241",
}

// service is one payment service run in-process through run, as main runs
// it, on a fresh database, with the sandbox processor under httptest. Every
// logger (the service's, the sandbox's) writes into Logs.
type service struct {
	*servicetest.Service
	sandbox    *sandbox.Processor
	sandboxURL string
}

// withEnv sets a variable of the service's environment before it starts.
var withEnv = servicetest.WithEnv

// startService runs the service until the test ends and waits until it is
// ready. When the test ends, after the service stopped, its database and
// everything it and the sandbox logged are scanned for card data.
func startService(t *testing.T, opts ...servicetest.Option) *service {
	t.Helper()
	env := map[string]string{
		"PAYMENT_PROCESSOR_API_KEY":            "sk_test_payment",
		"PAYMENT_PROCESSOR_TIMEOUT":            "2s",
		"PAYMENT_FINGERPRINT_KEY":              "test-fingerprint-key-of-32-bytes-or-more",
		"PAYMENT_IDEMPOTENCY_LEASE":            "5s",
		"PAYMENT_RECONCILE_INTERVAL":           "100ms",
		"PAYMENT_IDEMPOTENCY_CLEANUP_INTERVAL": "100ms",
		"SANDBOX_API_KEY":                      "sk_test_payment",
		"SANDBOX_SLOW_DELAY":                   "4s",
	}
	for _, o := range opts {
		o(env)
	}
	logs := &servicetest.Logs{}
	s := &service{}

	var sbCfg sandbox.Config
	if err := config.Load(&sbCfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	sbLog := logs.Logger(t, "sandbox-processor", "trace")
	sb, err := sandbox.New(sbCfg, sbLog)
	if err != nil {
		t.Fatal(err)
	}
	sbSrv := httptest.NewServer(httpx.Middleware(sbLog, sb))
	t.Cleanup(sbSrv.Close)
	s.sandbox, s.sandboxURL = sb, sbSrv.URL
	if env["PAYMENT_PROCESSOR_URL"] == "" {
		env["PAYMENT_PROCESSOR_URL"] = sbSrv.URL
	}

	s.Service = servicetest.Start(t, servicetest.Config{
		Name: "payment", Run: run, Env: env, Logs: logs,
		AfterStop: func() { s.checkNoCardData(t) },
	}, migrations.Set)
	return s
}

// checkNoCardData is acceptance 6, run at the end of every test that
// started a service: no card number nor CVC in any text, json or bytea
// column of any table, nor in any line the service or the sandbox logged.
func (s *service) checkNoCardData(t *testing.T) {
	t.Helper()
	pattern := secretPattern()
	ctx := context.Background()
	rows, err := s.DB.Query(ctx, `
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public'
	AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')
ORDER BY table_name, column_name`)
	if err != nil {
		t.Fatalf("list columns: %v", err)
	}
	type column struct{ table, name, typ string }
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil || len(cols) == 0 {
		t.Fatalf("list columns: got %d columns, %v; want some", len(cols), err)
	}
	for _, c := range cols {
		expr := fmt.Sprintf("%q::text", c.name)
		if c.typ == "bytea" {
			expr = fmt.Sprintf("encode(%q, 'escape')", c.name)
		}
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE %s ~ $1`, c.table, expr)
		if err := s.DB.QueryRow(ctx, q, pattern.String()).Scan(&n); err != nil {
			t.Fatalf("scan %s.%s: %v", c.table, c.name, err)
		}
		if n > 0 {
			t.Errorf("%s.%s: %d rows hold a card number or CVC", c.table, c.name, n)
		}
	}
	logs := s.Logs.String()
	if logs == "" {
		t.Error("no log line captured; the scan would prove nothing")
	}
	for _, line := range strings.Split(logs, "\n") {
		if pattern.MatchString(line) {
			t.Errorf("a log line holds a card number or CVC: %s", line)
		}
	}
}

// secretPattern matches any card number or CVC the tests send, standing
// alone (not inside a longer number, a uuid or a decimal), in a syntax
// both Go's and PostgreSQL's regular expressions accept.
func secretPattern() *regexp.Regexp {
	alts := append([]string{cvc, otherCVC}, secretCards...)
	return regexp.MustCompile(`(^|[^0-9A-Za-z._:-])(` + strings.Join(alts, "|") + `)([^0-9A-Za-z._:-]|$)`)
}

func TestSecretPatternFindsLeaks(t *testing.T) {
	t.Parallel()
	p := secretPattern()
	tests := []struct {
		line string
		want bool
	}{
		{`{"card":{"number":"4242424242424242"}}`, true},
		{`charging {4000000000000077 12 2030 7319 }`, true},
		{`"cvc":"5084"`, true},
		{`cvc=7319`, true},
		{`"request_id":"0190d6a4-7319-7000-8000-000000000001"`, false},
		{`"duration_ms":17.319`, false},
		{`"card_last4":"4242"`, false},
	}
	for _, tt := range tests {
		if got := p.MatchString(tt.line); got != tt.want {
			t.Errorf("match %s: got %v, want %v", tt.line, got, tt.want)
		}
	}
}

// response is an answer of the service.
type response = servicetest.Response

// do sends a request with an optional Idempotency-Key and JSON body (a
// string is sent as it is; anything else is marshalled). It is safe to call
// from many goroutines: failures are returned through t.Errorf.
func (s *service) do(t *testing.T, method, path, key string, body any) response {
	t.Helper()
	req := servicetest.Request{Body: body}
	if key != "" {
		req.Header = map[string]string{"Idempotency-Key": key}
	}
	r, err := s.Send(context.Background(), method, path, req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
	}
	return r
}

// payment and refund are the bodies of the API.
type payment struct {
	ID             string   `json:"id"`
	OrderID        string   `json:"order_id"`
	Amount         int64    `json:"amount"`
	Currency       string   `json:"currency"`
	Status         string   `json:"status"`
	AmountRefunded int64    `json:"amount_refunded"`
	Card           cardView `json:"card"`
	Reference      string   `json:"processor_reference"`
	FailureCode    string   `json:"failure_code"`
	FailureMessage string   `json:"failure_message"`
	Refunds        []refund `json:"refunds"`
}

type cardView struct {
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

type refund struct {
	ID        string `json:"id"`
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
	Status    string `json:"status"`
	Reference string `json:"processor_reference"`
}

// expYear is a year in which test cards are valid.
var expYear = time.Now().Year() + 3

// payReq is a payment request body.
func payReq(orderID string, amount int64, number string) map[string]any {
	return map[string]any{
		"order_id": orderID, "amount": amount, "currency": "EUR",
		"card": map[string]any{"number": number, "exp_month": 12, "exp_year": expYear, "cvc": cvc, "holder": "Ada Lovelace"},
	}
}

func newOrderID() string { return uuid.NewString() }

// pay creates a payment and fails the test unless it is answered status.
func (s *service) pay(t *testing.T, key string, body map[string]any, status int) response {
	t.Helper()
	return s.do(t, "POST", "/internal/payments", key, body).Want(t, status)
}

func (s *service) get(t *testing.T, id string) payment {
	t.Helper()
	var p payment
	s.do(t, "GET", "/internal/payments/"+id, "", nil).Want(t, http.StatusOK).Decode(t, &p)
	return p
}

// counts reads the sandbox's counts over HTTP, as a journey would.
func (s *service) counts(t *testing.T) sandbox.Counts {
	t.Helper()
	resp, err := http.Get(s.sandboxURL + "/v1/test/charge-counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c sandbox.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
