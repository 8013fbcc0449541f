package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/inventory/migrations"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// service is one inventory service run in-process through run, as main
// runs it, on a fresh database, trusting the tokens of a test issuer.
type service struct {
	*servicetest.Service
	issuer *servicetest.Issuer
}

// withEnv sets a variable of the service's environment before it starts.
var withEnv = servicetest.WithEnv

// startService runs the service until the test ends, and waits until it is
// ready. Its sweeper runs once an hour unless an option says otherwise, so
// that tests sweep when they choose to (with s.sweeper).
func startService(t testing.TB, opts ...servicetest.Option) *service {
	t.Helper()
	issuer := servicetest.NewIssuer(t)
	env := map[string]string{
		"AUTH_JWKS_URL":            issuer.JWKSURL,
		"INVENTORY_SWEEP_INTERVAL": "1h",
		"DATABASE_MAX_CONNS":       "20",
	}
	for _, o := range opts {
		o(env)
	}
	svc := servicetest.Start(t, servicetest.Config{Name: "inventory", Run: run, Env: env}, migrations.Set)
	return &service{Service: svc, issuer: issuer}
}

// user is a caller with a valid access token.
type user = servicetest.User

// user returns a new account of role with a token signed by the service's
// issuer; verified says whether its email address is.
func (s *service) user(t testing.TB, role string, verified bool) user {
	t.Helper()
	return s.issuer.User(t, role, verified)
}

// response is an answer of the service.
type response = servicetest.Response

// do sends a request with an optional bearer token, JSON body (a string is
// sent as it is; anything else is marshalled) and headers (name, value,
// …).
func (s *service) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	return s.Do(t, method, path, request(token, body, headers))
}

// send is do for goroutines that must not call t.Fatal.
func (s *service) send(ctx context.Context, method, path, token string, body any, headers ...string) (response, error) {
	return s.Send(ctx, method, path, request(token, body, headers))
}

func request(token string, body any, headers []string) servicetest.Request {
	req := servicetest.Request{Token: token, Body: body, Header: map[string]string{}}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = headers[i+1]
	}
	return req
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
	s.do(t, "POST", "/v1/seller/products", seller.Token, p).Want(t, http.StatusCreated).Decode(t, &out)
	return out
}

// stock reads a product's counters in the database.
func (s *service) stock(t testing.TB, id uuid.UUID) (onHand, reserved int) {
	t.Helper()
	if err := s.DB.QueryRow(context.Background(), `SELECT on_hand, reserved FROM products WHERE id = $1`, id).Scan(&onHand, &reserved); err != nil {
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
	pgtest.Exec(t, s.DB, `UPDATE reservations SET expires_at = now() + make_interval(secs => $2) WHERE order_id = $1`, orderID, offset.Seconds())
}

// sweeper is the inventory domain on the service's database, as another
// instance of the service runs it, expiring batch reservations per
// transaction: tests sweep with it when they choose to.
func (s *service) sweeper(t testing.TB, batch int) *inventory.Service {
	t.Helper()
	cfg := inventory.Config{ReservationTTL: 15 * time.Minute, SweepInterval: time.Hour, SweepBatch: batch}
	return inventory.NewService(s.DB, cfg, logging.ForTest(t))
}
