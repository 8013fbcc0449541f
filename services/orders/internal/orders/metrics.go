package orders

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/metrics"
)

var (
	inProgressDesc = prometheus.NewDesc("orders_in_progress",
		"Orders in a status the checkout saga still has work in.", []string{"status"}, nil)
	oldestDesc = prometheus.NewDesc("orders_oldest_in_progress_age_seconds",
		"Time since the status of the oldest order in it changed (0 when there is none).", []string{"status"}, nil)
)

// newEnteredCounter is orders_entered_total{status}.
func newEnteredCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orders_entered_total",
		Help: "Orders this instance moved into a status (created pending, or by a transition), once the change committed.",
	}, []string{"status"})
	for _, st := range Statuses {
		c.WithLabelValues(string(st)) // every series from the start, at 0
	}
	return c
}

// Collector reports the orders to Prometheus; register it with the
// server's registry. orders_in_progress{status} and
// orders_oldest_in_progress_age_seconds{status}, for each Recoverable
// status, are read from the database at each scrape (within
// metrics.QueryTimeout), so that every instance reports the same truth;
// orders_entered_total{status} counts this instance's changes.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inProgressDesc
	ch <- oldestDesc
	c.s.entered.Describe(ch)
}

// Collect implements prometheus.Collector. A failed read leaves the
// gauges out of the scrape (the handler logs it), never reports zeros.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.s.entered.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), metrics.QueryTimeout)
	defer cancel()
	counts, err := countInProgress(ctx, c.s.pool, Recoverable)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(inProgressDesc, err)
		return
	}
	for _, st := range Recoverable {
		n := counts[st]
		ch <- prometheus.MustNewConstMetric(inProgressDesc, prometheus.GaugeValue, float64(n.orders), string(st))
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, n.oldest, string(st))
	}
}
