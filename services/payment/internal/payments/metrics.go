package payments

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/metrics"
)

var (
	pendingDesc = prometheus.NewDesc("payments_pending",
		"Payments whose outcome at the processor is not known yet (the reconciler asks).", nil, nil)
	oldestPendingDesc = prometheus.NewDesc("payments_oldest_pending_age_seconds",
		"Time since the oldest pending payment was created (0 when none is).", nil, nil)
)

// Collector reports the pending payments to Prometheus; register it with
// the server's registry. payments_pending and
// payments_oldest_pending_age_seconds are read from the database at each
// scrape (within metrics.QueryTimeout), so that every instance reports
// the same truth.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- oldestPendingDesc
}

// Collect implements prometheus.Collector. A failed read leaves the
// gauges out of the scrape (the handler logs it), never reports zeros.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metrics.QueryTimeout)
	defer cancel()
	n, oldest, err := countPending(ctx, c.s.pool)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestPendingDesc, prometheus.GaugeValue, oldest)
}
