// Package metrics is how every service reports to Prometheus, the same way:
// a registry of the server's own (never the global default one: a test
// binary runs several services in one process, and each must report its
// own) with the Go runtime's and the process's collectors, the HTTP
// server's request metrics, and the handler of /metrics, which package
// server serves on the health listener only.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// QueryTimeout bounds the database reads a collector makes at scrape time:
// a slow database costs a scrape its gauges, never a pile of queries.
const QueryTimeout = 2 * time.Second

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// maxScrapes bounds the scrapes served at once: each may query the
// database.
const maxScrapes = 4

// Handler serves reg's metrics in Prometheus's text format. A collector
// that fails (a database read past QueryTimeout) is logged and left out of
// that scrape; the other metrics are served.
func Handler(reg *prometheus.Registry, log hclog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            log.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg, // counts the scrapes' errors
		MaxRequestsInFlight: maxScrapes,
	})
}

// The labels a client cannot choose: a request that matched no route (404,
// 405, or refused before routing), and a method outside the standard ones.
const (
	Unmatched   = "unmatched"
	OtherMethod = "other"
)

// durationBuckets reach past the longest request a service lets run (a
// checkout's budget, 25s by default).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// HTTP is a server's request metrics: http_requests_total{route, method,
// status} and http_request_duration_seconds{route, method}. Every label is
// bounded whatever clients send: route is the template of the route the
// request matched (named by the router, see httpx.SetRoute) or Unmatched,
// never the path; method is one of the standard methods or OtherMethod.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP returns the request metrics, registered with reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Middleware counts and times every request of next. It goes outside the
// router (and outside httpx.Middleware, so that it sees the 500 of a
// recovered panic); the router names the route in the slot it puts in the
// request's context.
func (m *HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, route := httpx.WithRouteSlot(r)
		rec := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		name := route()
		if name == "" {
			name = Unmatched
		}
		method := methodLabel(r.Method)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(name, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(name, method).Observe(time.Since(start).Seconds())
	})
}

func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return OtherMethod
}

// statusWriter remembers the final status a handler wrote (net/http
// refuses one outside 100–999, so the label stays bounded).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // 1xx are informational, not the answer
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
