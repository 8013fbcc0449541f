package main

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mylittleshopping/shop/services/orders/internal/orders"
	"github.com/mylittleshopping/shop/services/orders/migrations"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// TestMetrics: the orders' gauges are read from the database at each
// scrape of the health listener's /metrics: the orders in each status the
// saga still has work in and the age of the oldest (a confirmed order is
// no longer in progress); orders_entered_total counts the changes this
// instance made; requests count by route template. The API's port serves
// no /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	health := servicetest.Addr(t)
	s := startService(t, withEnv("HTTP_HEALTH_ADDR", health))
	scrape := func() metricstest.Families { return metricstest.Scrape(t, "http://"+health+"/metrics") }
	gauge := func(f metricstest.Families, name, status string) float64 {
		t.Helper()
		v, ok := f.Value(name, "status", status)
		if !ok {
			t.Fatalf("no series %s{status=%q}", name, status)
		}
		return v
	}

	empty := scrape()
	for _, st := range []string{"pending", "reserved", "paid", "cancel_requested"} {
		if got := gauge(empty, "orders_in_progress", st); got != 0 {
			t.Errorf("no orders yet: got orders_in_progress{%s} %v, want 0", st, got)
		}
		if got := gauge(empty, "orders_oldest_in_progress_age_seconds", st); got != 0 {
			t.Errorf("no orders yet: got orders_oldest_in_progress_age_seconds{%s} %v, want 0", st, got)
		}
	}
	if _, ok := empty.Value("orders_in_progress", "status", "confirmed"); ok {
		t.Error("got a series orders_in_progress{confirmed}, want none: the saga is done with a confirmed order")
	}

	buyer, seller := s.user(t, "buyer", true), s.user(t, "seller", true)
	waiting := s.newOrder(t, buyer, line{seller: seller, unitPrice: 500, quantity: 1})
	reserved := s.newOrder(t, buyer, line{seller: seller, unitPrice: 700, quantity: 2})
	done := s.newOrder(t, buyer, line{seller: seller, unitPrice: 900, quantity: 1})
	s.transition(t, reserved.Id, "reserved", "").Want(t, http.StatusOK)
	s.confirm(t, done.Id)
	// The waiting order has been pending for ten minutes.
	if _, err := s.DB.Exec(context.Background(),
		`UPDATE orders SET status_changed_at = now() - interval '10 minutes' WHERE id = $1`, waiting.Id); err != nil {
		t.Fatal(err)
	}

	f := scrape()
	for st, want := range map[string]float64{"pending": 1, "reserved": 1, "paid": 0, "cancel_requested": 0} {
		if got := gauge(f, "orders_in_progress", st); got != want {
			t.Errorf("got orders_in_progress{%s} %v, want %v", st, got, want)
		}
	}
	if got := gauge(f, "orders_oldest_in_progress_age_seconds", "pending"); got < 600 || got > 660 {
		t.Errorf("got orders_oldest_in_progress_age_seconds{pending} %v, want about 600", got)
	}
	if got := gauge(f, "orders_oldest_in_progress_age_seconds", "reserved"); got <= 0 || got > 60 {
		t.Errorf("got orders_oldest_in_progress_age_seconds{reserved} %v, want a few seconds at most", got)
	}
	for st, want := range map[string]float64{"pending": 3, "reserved": 2, "paid": 1, "confirmed": 1, "failed": 0} {
		if got := gauge(f, "orders_entered_total", st); got != want {
			t.Errorf("got orders_entered_total{%s} %v, want %v", st, got, want)
		}
	}
	// A replayed checkout gets its order back: nothing more entered.
	req := orderRequest(buyer, line{seller: seller, unitPrice: 100, quantity: 1})
	s.createOrder(t, "replayed", req).Want(t, http.StatusCreated)
	s.createOrder(t, "replayed", req).Want(t, http.StatusOK)

	f = scrape()
	if got := gauge(f, "orders_entered_total", "pending"); got != 4 {
		t.Errorf("after a new order and its replay: got orders_entered_total{pending} %v, want 4", got)
	}
	if got, ok := f.Value("http_requests_total", "route", "/internal/orders/{id}/transitions", "method", "POST", "status", "200"); !ok || got != 4 {
		t.Errorf("got http_requests_total{/internal/orders/{id}/transitions POST 200} %v (present: %v), want 4", got, ok)
	}
	if got := s.do(t, "GET", "/metrics", request{}).Status; got != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's port: got %d, want 404", got)
	}
}

// TestMetricsWithoutDatabase: when the database cannot be read, the
// orders' gauges are left out of the scrape, never reported as zeros; the
// counter of changes is still there.
func TestMetricsWithoutDatabase(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, migrations.Set, outbox.Migrations)
	svc := orders.NewService(pool, orders.Config{}, logging.ForTest(t))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(svc.Collector())
	if got, ok := metricstest.Gather(t, reg).Value("orders_in_progress", "status", "pending"); !ok || got != 0 {
		t.Fatalf("with the database: got orders_in_progress{pending} %v (present: %v), want 0", got, ok)
	}
	pool.Close()
	fams, err := reg.Gather()
	if err == nil {
		t.Error("gather without the database: got no error, want the failed read")
	}
	for _, f := range fams {
		if name := f.GetName(); name == "orders_in_progress" || name == "orders_oldest_in_progress_age_seconds" {
			t.Errorf("got %s without the database, want it left out", name)
		}
	}
	if !slices.ContainsFunc(fams, func(f *dto.MetricFamily) bool { return f.GetName() == "orders_entered_total" }) {
		t.Error("no orders_entered_total without the database")
	}
}
