package server_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/server"
)

// metricsServer serves a router of two routes (one of them panics) with a
// health listener, until the test ends, and returns the API's and the
// health listener's base URLs.
func metricsServer(t *testing.T) (api, health string) {
	t.Helper()
	router := httpx.NewRouter()
	router.HandleFunc("/v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "an item")
	}).Methods(http.MethodGet)
	router.HandleFunc("/v1/boom", func(w http.ResponseWriter, r *http.Request) {
		panic("a bug")
	}).Methods(http.MethodPost)
	cfg := testConfig()
	cfg.HealthAddr = "127.0.0.1:0"
	srv := server.New(cfg, router, logging.ForTest(t))
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + addr.String(), "http://" + srv.HealthAddr().String()
}

// do sends one request and returns its status.
func do(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// The HTTP metrics' families.
const (
	requestsTotal   = "http_requests_total"
	requestDuration = "http_request_duration_seconds"
)

// TestRequestMetrics: requests are counted and timed by the template of
// the route they matched, never by their path; what matched no route is
// "unmatched" and a method outside the standard ones "other", so that
// junk from a client adds no series. /metrics is served on the health
// listener only.
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	api, health := metricsServer(t)

	calls := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/items/1", 200},
		{"GET", "/v1/items/2", 200},
		{"GET", "/v1/items/%00", 400}, // refused after routing: still the route's
		{"POST", "/v1/boom", 500},     // a panic, recovered
		{"GET", "/no/such/path", 404},
		{"BREW", "/v1/items/1", 405},
		{"BREW", "/no/such/path", 404},
		{"GET", "/health/live", 200},
		{"GET", "/metrics", 404}, // the API's port never serves the metrics
	}
	for _, c := range calls {
		if got := do(t, c.method, api+c.path); got != c.status {
			t.Errorf("%s %s: got %d, want %d", c.method, c.path, got, c.status)
		}
	}

	fams := metricstest.Scrape(t, health+"/metrics")
	want := []struct {
		route, method, status string
		count                 float64
	}{
		{"/v1/items/{id}", "GET", "200", 2},
		{"/v1/items/{id}", "GET", "400", 1},
		{"/v1/boom", "POST", "500", 1},
		{"unmatched", "GET", "404", 2}, // /no/such/path and /metrics
		{"unmatched", "other", "405", 1},
		{"unmatched", "other", "404", 1},
		{"/health/live", "GET", "200", 1},
	}
	for _, w := range want {
		got, ok := fams.Value(requestsTotal, "route", w.route, "method", w.method, "status", w.status)
		if !ok || got != w.count {
			t.Errorf("%s{%s %s %s}: got %v (present: %v), want %v", requestsTotal, w.route, w.method, w.status, got, ok, w.count)
		}
	}
	if got, ok := fams.Value(requestDuration, "route", "/v1/items/{id}", "method", "GET"); !ok || got != 3 {
		t.Errorf("%s{/v1/items/{id} GET}: got %v observations (present: %v), want 3", requestDuration, got, ok)
	}
	for _, fam := range []string{requestsTotal, requestDuration} {
		for _, route := range fams.LabelValues(fam, "route") {
			if strings.Contains(route, "no/such") {
				t.Errorf("%s has a series for the raw path %q", fam, route)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s (the Go and process collectors)", name)
		}
	}

	// A hostile client's junk: random paths (some under a real route's
	// prefix, some matching it with random ids) and random methods. (No
	// dots: a dot segment is answered with a redirect, one more status,
	// as bounded as the others.)
	before := fams.Series(requestsTotal, requestDuration)
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-_~"
	junk := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rand.N(len(letters))]
		}
		return string(b)
	}
	ids := 0 // the junk that is a GET of an item: route /v1/items/{id}
	for i := range 1000 {
		method := "GET"
		if i%3 == 0 {
			// Z: no standard method begins with it.
			method = "Z" + strings.ToUpper(strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r
				}
				return 'x'
			}, junk(1+rand.N(12))))
		}
		var path string
		switch i % 4 {
		case 0:
			path = "/" + junk(1+rand.N(40))
		case 1:
			path = "/v1/items/" + junk(1+rand.N(20)) + "/" + junk(1+rand.N(20))
		case 2:
			path = "/v1/items/" + junk(1+rand.N(20))
			if method == "GET" {
				ids++
			}
		case 3:
			path = "/v1/" + junk(1+rand.N(10)) + "/" + junk(1+rand.N(10))
		}
		do(t, method, api+path)
	}
	after := metricstest.Scrape(t, health+"/metrics")
	if got := after.Series(requestsTotal, requestDuration); got != before {
		t.Errorf("1000 junk requests: got %d series of the HTTP metrics, want %d as before", got, before)
	}
	if got, _ := after.Value(requestsTotal, "route", "/v1/items/{id}", "method", "GET", "status", "200"); got != float64(2+ids) {
		t.Errorf("got %v requests of /v1/items/{id}, want %d (2 and the junk ids)", got, 2+ids)
	}
}

// TestMetricsPerServer: two servers in one process (as in a test binary
// that starts several services) report each its own requests.
func TestMetricsPerServer(t *testing.T) {
	t.Parallel()
	api1, health1 := metricsServer(t)
	_, health2 := metricsServer(t)
	do(t, "GET", api1+"/v1/items/1")
	labels := []string{"route", "/v1/items/{id}", "method", "GET", "status", "200"}
	if got, ok := metricstest.Scrape(t, health1+"/metrics").Value(requestsTotal, labels...); !ok || got != 1 {
		t.Errorf("the server called: got %v (present: %v), want 1", got, ok)
	}
	if got, ok := metricstest.Scrape(t, health2+"/metrics").Value(requestsTotal, labels...); ok {
		t.Errorf("the other server: got %v, want no series", got)
	}
}
