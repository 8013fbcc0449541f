package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/orders/migrations"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The issuer and audience the service expects (authn.Config's defaults).
const (
	tokenIssuer   = "mylittleshopping-auth"
	tokenAudience = "mylittleshopping"
)

// service is one orders service run in-process through run, as main runs
// it, on a fresh database, trusting the tokens of a real authn.Signer whose
// public key an httptest server publishes as auth does, with the mail sink
// standing in for Mailjet.
type service struct {
	url    string // http://127.0.0.1:port
	dbURL  string
	db     *pgxpool.Pool // the service's database, for the checks a client cannot make
	signer *authn.Signer
	sink   *mailsink.Sink
	logs   *syncBuffer // every JSON line the service logged
	env    map[string]string
	stopFn func() error
}

// option adjusts a service's environment before it starts.
type option func(env map[string]string)

func withEnv(k, v string) option { return func(env map[string]string) { env[k] = v } }

// startService runs the service until the test ends, and waits until it is
// ready.
func startService(t *testing.T, opts ...option) *service {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := authn.NewSigner(key, tokenIssuer, tokenAudience)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, authn.JWKS{Keys: []authn.JWK{authn.PublicJWK(signer.Public())}})
	}))
	t.Cleanup(jwks.Close)
	sink, err := mailsink.New(mailsink.Config{MaxMessages: 1000, MaxBodyBytes: 1 << 20}, logging.ForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	port := freePort(t)
	env := map[string]string{
		"HTTP_ADDR":               fmt.Sprintf("127.0.0.1:%d", port),
		"HTTP_SHUTDOWN_TIMEOUT":   "5s",
		"AUTH_JWKS_URL":           jwks.URL,
		"MAILJET_API_KEY_PUBLIC":  "test-public",
		"MAILJET_API_KEY_PRIVATE": "test-private",
		"MAILJET_BASE_URL":        sinkSrv.URL,
		"MAIL_FROM_EMAIL":         "orders@mylittleshopping.dev",
		"ORDERS_ORDER_URL":        "https://shop.example.com/orders",
		"OUTBOX_POLL_INTERVAL":    "50ms",
		"OUTBOX_BACKOFF_BASE":     "50ms",
		"OUTBOX_BACKOFF_MAX":      "200ms",
		"DATABASE_MAX_CONNS":      "30",
	}
	for _, o := range opts {
		o(env)
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = pgtest.URL(t, migrations.Set, outbox.Migrations)
	}
	s := &service{url: fmt.Sprintf("http://127.0.0.1:%d", port), dbURL: env["DATABASE_URL"], signer: signer, sink: sink, logs: &syncBuffer{}, env: env}
	if s.db, err = pgxpool.New(context.Background(), s.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Close)
	s.run(t)
	return s
}

// run starts the service on s's environment and stops it when the test
// ends.
func (s *service) run(t *testing.T) {
	t.Helper()
	log := logging.New("orders", io.MultiWriter(s.logs, testLog{t}), "trace")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, log, config.MapLookup(s.env)) }()
	stop := func() error {
		cancel()
		return <-done
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.url + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("service stopped while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready after 15s: %v", stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stopFn = stop
	t.Cleanup(func() {
		if s.stopFn != nil {
			if err := s.stop(); err != nil {
				t.Errorf("run returned %v, want nil after a graceful stop", err)
			}
		}
	})
}

// stop stops the service and returns what run returned.
func (s *service) stop() error {
	stop := s.stopFn
	s.stopFn = nil
	return stop()
}

// freePort is a port for a server the test starts next (porttest: never
// one the kernel may give a parallel test's client or httptest server).
func freePort(t *testing.T) int {
	t.Helper()
	return porttest.Free(t)
}

// syncBuffer is a bytes.Buffer that many goroutines may log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLog shows the service's log lines with the test's output when it
// fails or runs with -v.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// user is a caller with a valid access token.
type user struct {
	id    uuid.UUID
	email string
	token string
}

// user returns a new account of role with a token signed by the service's
// issuer; verified says whether its email address is.
func (s *service) user(t *testing.T, role string, verified bool) user {
	t.Helper()
	id := uuid.New()
	email := role + "-" + id.String()[:8] + "@example.com"
	c := authn.Claims{Role: role, Email: email, EmailVerified: verified}
	c.Subject = id.String()
	tok, err := s.signer.Sign(c, 15*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return user{id: id, email: email, token: tok}
}

// response is an answer of the service.
type response struct {
	status int
	header http.Header
	body   []byte
}

// request is what do sends: an optional bearer token, extra headers and a
// JSON body (a string is sent as it is; anything else is marshalled).
type request struct {
	token   string
	headers map[string]string
	body    any
}

func (s *service) do(t *testing.T, method, path string, req request) response {
	t.Helper()
	var r io.Reader
	switch b := req.body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.headers {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// want fails the test unless the response has the status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// decode unmarshals the body into v, refusing fields v does not have, so a
// response that strays from the spec's types fails.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) order(t *testing.T) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	r.decode(t, &o)
	return o
}

// problem checks that the response is problem+json and returns it.
func (r response) problem(t *testing.T) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Fatalf("got Content-Type %q, want %q; body: %s", ct, httpx.ProblemContentType, r.body)
	}
	var p httpx.Problem
	r.decode(t, &p)
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Instance == "" {
		t.Fatalf("incomplete problem %+v for status %d", p, r.status)
	}
	return p
}

// line is a line of an order to create.
type line struct {
	seller    user
	unitPrice int64
	quantity  int
	currency  string
}

// orderRequest is a valid body of POST /internal/orders for buyer with
// lines, each of a new product.
func orderRequest(buyer user, lines ...line) httpapi.CreateOrderRequest {
	req := httpapi.CreateOrderRequest{
		BuyerId:    buyer.id.String(),
		BuyerEmail: buyer.email,
		ShippingAddress: httpapi.Address{
			Name: "Ada Lovelace", Line1: "12 rue de la Paix", City: "Paris", PostalCode: "75002", Country: "FR",
		},
	}
	for i, l := range lines {
		cur := l.currency
		if cur == "" {
			cur = "EUR"
		}
		req.Lines = append(req.Lines, httpapi.OrderLineInput{
			ProductId:   uuid.NewString(),
			SellerId:    l.seller.id.String(),
			SellerEmail: l.seller.email,
			Name:        fmt.Sprintf("Product %d", i+1),
			UnitPrice:   l.unitPrice,
			Currency:    cur,
			Quantity:    l.quantity,
		})
	}
	return req
}

// createOrder posts body with the checkout key.
func (s *service) createOrder(t *testing.T, key string, body any) response {
	t.Helper()
	return s.do(t, "POST", "/internal/orders", request{headers: map[string]string{"Idempotency-Key": key}, body: body})
}

// newOrder creates a pending order for buyer with lines and returns it.
func (s *service) newOrder(t *testing.T, buyer user, lines ...line) httpapi.Order {
	t.Helper()
	return s.createOrder(t, uuid.NewString(), orderRequest(buyer, lines...)).want(t, http.StatusCreated).order(t)
}

// transition asks the internal API to move order id to status to.
func (s *service) transition(t *testing.T, id uuid.UUID, to, reason string) response {
	t.Helper()
	body := map[string]string{"to": to}
	if reason != "" {
		body["reason"] = reason
	}
	return s.do(t, "POST", "/internal/orders/"+id.String()+"/transitions", request{body: body})
}

// confirm takes a pending order through the checkout's happy path.
func (s *service) confirm(t *testing.T, id uuid.UUID) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	for _, to := range []string{"reserved", "paid", "confirmed"} {
		o = s.transition(t, id, to, "").want(t, http.StatusOK).order(t)
	}
	return o
}

// moveDelivery is a seller's move of a delivery.
func (s *service) moveDelivery(t *testing.T, seller user, id uuid.UUID, status, carrier, tracking string) response {
	t.Helper()
	body := map[string]string{"status": status}
	if carrier != "" {
		body["carrier"] = carrier
	}
	if tracking != "" {
		body["tracking_number"] = tracking
	}
	return s.do(t, "POST", "/v1/sales/deliveries/"+id.String()+"/status", request{token: seller.token, body: body})
}

// emails waits until the outbox has sent everything it holds and returns
// the sink's emails to address, oldest first.
func (s *service) emails(t *testing.T, to string) []mailsink.StoredMessage {
	t.Helper()
	s.drainOutbox(t)
	return s.sink.Messages(mailsink.Filter{To: to})
}

// drainOutbox waits until no outbox message is left to send.
func (s *service) drainOutbox(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pending int
		if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox messages still unsent after 10s", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subjects are the subjects of messages, in order.
func subjects(msgs []mailsink.StoredMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Message.Subject
	}
	return out
}

// count runs a count query on the service's database.
func (s *service) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
