package outbox

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/metrics"
)

var (
	backlogDesc = prometheus.NewDesc("outbox_messages",
		"Outbox messages still to deliver (pending, of which in_flight and retrying) and given up on (dead).", []string{"state"}, nil)
	oldestPendingDesc = prometheus.NewDesc("outbox_oldest_pending_age_seconds",
		"Time since the oldest message still to deliver was queued (0 when none is).", nil, nil)
)

// The backlog read at each scrape. Every filter is that of a partial index
// (outbox_messages_due_idx, outbox_messages_dead_idx), so its cost follows
// the backlog, not the table, however many sent rows it keeps.
const selectBacklog = `
SELECT
	(SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL),
	(SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL AND claimed_until > now()),
	(SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL AND attempts > 0 AND (claimed_until IS NULL OR claimed_until <= now())),
	(SELECT count(*) FROM outbox_messages WHERE dead_at IS NOT NULL),
	coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox_messages WHERE sent_at IS NULL AND dead_at IS NULL), 0)::float8`

// deliveries is outbox_deliveries_total{topic, outcome}: what this
// instance's relay did with each claim.
func newDeliveries() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outbox_deliveries_total",
		Help: "Deliveries this instance's relay attempted, by topic and outcome (sent, retry, dead).",
	}, []string{"topic", "outcome"})
}

// Collector reports the outbox to Prometheus; register it with the
// server's registry. The backlog (outbox_messages{state},
// outbox_oldest_pending_age_seconds) is the database's, read at each scrape
// within metrics.QueryTimeout, so every instance reports the same truth;
// outbox_deliveries_total counts this relay's work.
func (r *Relay) Collector() prometheus.Collector { return relayCollector{r} }

type relayCollector struct{ r *Relay }

// Describe implements prometheus.Collector.
func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestPendingDesc
	c.r.deliveries.Describe(ch)
}

// Collect implements prometheus.Collector. A failed read leaves the
// backlog out of the scrape (the handler logs it), never reports zeros.
func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.deliveries.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), metrics.QueryTimeout)
	defer cancel()
	var pending, inFlight, retrying, dead int64
	var oldest float64
	if err := c.r.pool.QueryRow(ctx, selectBacklog).Scan(&pending, &inFlight, &retrying, &dead, &oldest); err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	for state, n := range map[string]int64{"pending": pending, "in_flight": inFlight, "retrying": retrying, "dead": dead} {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(oldestPendingDesc, prometheus.GaugeValue, max(oldest, 0))
}

// counted is the outcome of one delivery, for outbox_deliveries_total.
func (r *Relay) counted(topic, outcome string) {
	r.deliveries.WithLabelValues(topic, outcome).Inc()
}
