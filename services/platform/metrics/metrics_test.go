package metrics_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/metrics"
	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
)

// failing is a collector whose read always fails, as a database past its
// timeout does.
type failing struct{ desc *prometheus.Desc }

func (f failing) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("read the database: context deadline exceeded"))
}

// TestHandlerServesWhatItCan: a collector that fails costs the scrape its
// own metrics only: the others are served, with a 200.
func TestHandlerServesWhatItCan(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	reg.MustRegister(failing{prometheus.NewDesc("things_pending", "Things pending.", nil, nil)})
	done := prometheus.NewCounter(prometheus.CounterOpts{Name: "things_done_total", Help: "Things done."})
	reg.MustRegister(done)
	done.Add(3)
	srv := httptest.NewServer(metrics.Handler(reg, logging.ForTest(t)))
	t.Cleanup(srv.Close)

	f := metricstest.Scrape(t, srv.URL) // fails the test unless a 200
	if got, ok := f.Value("things_done_total"); !ok || got != 3 {
		t.Errorf("got things_done_total %v (present: %v), want 3", got, ok)
	}
	if _, ok := f["things_pending"]; ok {
		t.Error("got things_pending, want it left out: its read failed")
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the registry lacks the Go collector")
	}
}
