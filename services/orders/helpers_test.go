package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/orders/internal/httpapi"
	"github.com/mylittleshopping/shop/services/orders/migrations"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// service is one orders service run in-process through run, as main runs
// it, on a fresh database, trusting the tokens of a test issuer, with the
// mail sink standing in for Mailjet.
type service struct {
	*servicetest.Service
	issuer *servicetest.Issuer
	sink   *mailsink.Sink
}

// withEnv sets a variable of the service's environment before it starts.
var withEnv = servicetest.WithEnv

// startService runs the service until the test ends, and waits until it is
// ready.
func startService(t *testing.T, opts ...servicetest.Option) *service {
	t.Helper()
	issuer := servicetest.NewIssuer(t)
	mail := servicetest.StartMail(t, mailsink.Config{MaxMessages: 1000, MaxBodyBytes: 1 << 20})
	env := servicetest.Merge(mail.Env("orders@mylittleshopping.dev"), map[string]string{
		"AUTH_JWKS_URL":      issuer.JWKSURL,
		"ORDERS_ORDER_URL":   "https://shop.example.com/orders",
		"DATABASE_MAX_CONNS": "30",
	})
	for _, o := range opts {
		o(env)
	}
	svc := servicetest.Start(t, servicetest.Config{Name: "orders", Run: run, Env: env}, migrations.Set, outbox.Migrations)
	return &service{Service: svc, issuer: issuer, sink: mail.Sink}
}

// user is a caller with a valid access token.
type user = servicetest.User

// user returns a new account of role with a token signed by the service's
// issuer; verified says whether its email address is.
func (s *service) user(t *testing.T, role string, verified bool) user {
	t.Helper()
	return s.issuer.User(t, role, verified)
}

// response is an answer of the service; its bodies are decoded strictly
// (DecodeStrict), so that a response that strays from the spec's types
// fails.
type response struct{ servicetest.Response }

// request is what do sends besides a method and a path.
type request = servicetest.Request

func (s *service) do(t *testing.T, method, path string, req request) response {
	t.Helper()
	return response{s.Do(t, method, path, req)}
}

// Want is servicetest's, returning a response whose order the chain can
// read.
func (r response) Want(t *testing.T, status int) response {
	t.Helper()
	r.Response.Want(t, status)
	return r
}

func (r response) order(t *testing.T) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	r.DecodeStrict(t, &o)
	return o
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
		BuyerId:    buyer.ID.String(),
		BuyerEmail: buyer.Email,
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
			SellerId:    l.seller.ID.String(),
			SellerEmail: l.seller.Email,
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
	return s.do(t, "POST", "/internal/orders", request{Header: map[string]string{"Idempotency-Key": key}, Body: body})
}

// newOrder creates a pending order for buyer with lines and returns it.
func (s *service) newOrder(t *testing.T, buyer user, lines ...line) httpapi.Order {
	t.Helper()
	return s.createOrder(t, uuid.NewString(), orderRequest(buyer, lines...)).Want(t, http.StatusCreated).order(t)
}

// transition asks the internal API to move order id to status to.
func (s *service) transition(t *testing.T, id uuid.UUID, to, reason string) response {
	t.Helper()
	body := map[string]string{"to": to}
	if reason != "" {
		body["reason"] = reason
	}
	return s.do(t, "POST", "/internal/orders/"+id.String()+"/transitions", request{Body: body})
}

// confirm takes a pending order through the checkout's happy path.
func (s *service) confirm(t *testing.T, id uuid.UUID) httpapi.Order {
	t.Helper()
	var o httpapi.Order
	for _, to := range []string{"reserved", "paid", "confirmed"} {
		o = s.transition(t, id, to, "").Want(t, http.StatusOK).order(t)
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
	return s.do(t, "POST", "/v1/sales/deliveries/"+id.String()+"/status", request{Token: seller.Token, Body: body})
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
		if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL`).Scan(&pending); err != nil {
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
	if err := s.DB.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
