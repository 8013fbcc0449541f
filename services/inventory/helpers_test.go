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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The issuer and audience the service expects (authn.Config's defaults).
const (
	tokenIssuer   = "mylittleshopping-auth"
	tokenAudience = "mylittleshopping"
)

// service is one inventory service run in-process through run, as main
// runs it, on a fresh database, trusting the tokens of its own issuer (a
// real authn.Signer whose public key an httptest server publishes as auth
// does).
type service struct {
	url    string // http://127.0.0.1:port
	dbURL  string
	db     *pgxpool.Pool // the service's database, for the checks a client cannot make
	signer *authn.Signer
	logs   *syncBuffer // every JSON line the service logged
	client *http.Client
	env    map[string]string
	stopFn func() error
}

// option adjusts a service's environment before it starts.
type option func(env map[string]string)

func withEnv(k, v string) option { return func(env map[string]string) { env[k] = v } }

// startService runs the service until the test ends, and waits until it is
// ready. Its sweeper runs once an hour unless an option says otherwise, so
// that tests sweep when they choose to (with s.inv).
func startService(t testing.TB, opts ...option) *service {
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

	port := freePort(t)
	env := map[string]string{
		"HTTP_ADDR":                fmt.Sprintf("127.0.0.1:%d", port),
		"HTTP_SHUTDOWN_TIMEOUT":    "5s",
		"AUTH_JWKS_URL":            jwks.URL,
		"INVENTORY_SWEEP_INTERVAL": "1h",
		"DATABASE_MAX_CONNS":       "20",
	}
	for _, o := range opts {
		o(env)
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = pgtest.URL(t, migrations.Set)
	}
	s := &service{
		url:    fmt.Sprintf("http://127.0.0.1:%d", port),
		dbURL:  env["DATABASE_URL"],
		signer: signer,
		logs:   &syncBuffer{},
		// Room for the concurrent tests' connections.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second},
		env:    env,
	}
	cfg, err := pgxpool.ParseConfig(s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 20
	if s.db, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Close)
	s.run(t)
	return s
}

// run starts the service on s's environment and stops it when the test
// ends.
func (s *service) run(t testing.TB) {
	t.Helper()
	log := logging.New("inventory", io.MultiWriter(s.logs, testLog{t}), "trace")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, log, config.MapLookup(s.env)) }()
	stop := sync.OnceValue(func() error {
		// A connection the client dialed but never sent a request on keeps
		// the server's drain waiting 5s (net/http counts it as busy): close
		// them first, as a proxy in front of the service would.
		s.client.CloseIdleConnections()
		cancel()
		return <-done
	})
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
	s.stopFn = stop // a test may stop it early, to run it again
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run returned %v, want nil after a graceful stop", err)
		}
	})
}

// freePort is a port for a server the test starts next (porttest: never
// one the kernel may give a parallel test's client or httptest server).
func freePort(t testing.TB) int {
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
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// user is a caller with a valid access token.
type user struct {
	id    uuid.UUID
	token string
}

// user returns a new account of role with a token signed by the service's
// issuer; verified says whether its email address is.
func (s *service) user(t testing.TB, role string, verified bool) user {
	t.Helper()
	id := uuid.New()
	c := authn.Claims{Role: role, Email: id.String() + "@example.com", EmailVerified: verified}
	c.Subject = id.String()
	tok, err := s.signer.Sign(c, 15*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return user{id: id, token: tok}
}

// response is an answer of the service.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with an optional bearer token, JSON body (a string is
// sent as it is; anything else is marshalled) and headers (name, value,
// …).
func (s *service) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	r, err := s.send(context.Background(), method, path, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// send is do for goroutines that must not call t.Fatal.
func (s *service) send(ctx context.Context, method, path, token string, body any, headers ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// want fails the test unless the response has the status.
func (r response) want(t testing.TB, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// decode unmarshals the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem checks that the response is problem+json and returns it.
func (r response) problem(t testing.TB) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Fatalf("got Content-Type %q, want %q; body: %s", ct, httpx.ProblemContentType, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	var p httpx.Problem
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, r.body)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Instance == "" {
		t.Fatalf("incomplete problem %+v for status %d", p, r.status)
	}
	return p
}

// wantProblem checks the response is a problem of status whose type ends
// with slug, and returns it.
func (r response) wantProblem(t testing.TB, status int, slug string) httpx.Problem {
	t.Helper()
	r.want(t, status)
	p := r.problem(t)
	if want := httpx.ProblemTypeBase + slug; p.Type != want {
		t.Fatalf("got problem type %q, want %q; body: %s", p.Type, want, r.body)
	}
	return p
}

// fieldsOf lists the fields a problem names.
func fieldsOf(p httpx.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	slices.Sort(out)
	return out
}

// The bodies of the API, as a client reads them.

type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type product struct {
	ID          uuid.UUID  `json:"id"`
	SellerID    uuid.UUID  `json:"seller_id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Price       money      `json:"price"`
	Available   int        `json:"available"`
	OnHand      int        `json:"on_hand"`
	Reserved    int        `json:"reserved"`
	Status      string     `json:"status"`
	Version     int        `json:"version"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ArchivedAt  *time.Time `json:"archived_at"`
}

type productPage struct {
	Items         []product `json:"items"`
	NextPageToken string    `json:"next_page_token"`
}

type cartLine struct {
	ProductID    uuid.UUID `json:"product_id"`
	SellerID     uuid.UUID `json:"seller_id"`
	Name         string    `json:"name"`
	Quantity     int       `json:"quantity"`
	UnitPrice    money     `json:"unit_price"`
	LineTotal    money     `json:"line_total"`
	Available    int       `json:"available"`
	Availability string    `json:"availability"`
	AddedAt      time.Time `json:"added_at"`
}

type cart struct {
	Lines  []cartLine `json:"lines"`
	Totals []money    `json:"totals"`
	Ready  bool       `json:"ready"`
}

type line struct {
	ProductID uuid.UUID `json:"product_id"`
	Quantity  int       `json:"quantity"`
}

type reservation struct {
	OrderID   uuid.UUID  `json:"order_id"`
	Status    string     `json:"status"`
	Lines     []line     `json:"lines"`
	ExpiresAt time.Time  `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	SettledAt *time.Time `json:"settled_at"`
}

// newProduct is a product to create; zero fields get defaults.
type newProduct struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Price       money  `json:"price"`
	OnHand      int    `json:"on_hand"`
}

// create puts p on sale as seller and returns it.
func (s *service) create(t testing.TB, seller user, p newProduct) product {
	t.Helper()
	if p.Name == "" {
		p.Name = "Product " + uuid.NewString()[:8]
	}
	if p.Price.Amount == 0 {
		p.Price.Amount = 1000
	}
	if p.Price.Currency == "" {
		p.Price.Currency = "EUR"
	}
	var out product
	s.do(t, "POST", "/v1/seller/products", seller.token, p).want(t, http.StatusCreated).decode(t, &out)
	return out
}

// stock reads a product's counters in the database.
func (s *service) stock(t testing.TB, id uuid.UUID) (onHand, reserved int) {
	t.Helper()
	if err := s.db.QueryRow(context.Background(), `SELECT on_hand, reserved FROM products WHERE id = $1`, id).Scan(&onHand, &reserved); err != nil {
		t.Fatal(err)
	}
	return onHand, reserved
}

// reserveBody is a reservation request.
func reserveBody(orderID uuid.UUID, ttlSeconds int, lines ...line) map[string]any {
	body := map[string]any{"order_id": orderID, "lines": lines}
	if ttlSeconds > 0 {
		body["ttl_seconds"] = ttlSeconds
	}
	return body
}

// expire moves a reservation's expiry to now() + offset in the database, as
// if time had passed.
func (s *service) expire(t testing.TB, orderID uuid.UUID, offset time.Duration) {
	t.Helper()
	pgtest.Exec(t, s.db, `UPDATE reservations SET expires_at = now() + make_interval(secs => $2) WHERE order_id = $1`, orderID, offset.Seconds())
}

// sweeper is the inventory domain on the service's database, as another
// instance of the service runs it, expiring batch reservations per
// transaction: tests sweep with it when they choose to.
func (s *service) sweeper(t testing.TB, batch int) *inventory.Service {
	t.Helper()
	cfg := inventory.Config{ReservationTTL: 15 * time.Minute, SweepInterval: time.Hour, SweepBatch: batch}
	return inventory.NewService(s.db, cfg, logging.ForTest(t))
}
