package records

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/metrics"
)

var (
	lastSuccessDesc = prometheus.NewDesc("backup_last_success_timestamp_seconds",
		"When the record a kind's schedule is judged by finished (see records.Counted: incr is the newest full or incremental backup).", []string{"db", "kind"}, nil)
	ageDesc = prometheus.NewDesc("backup_last_success_age_seconds",
		"How old the record a kind's schedule is judged by is; absent while the kind has never succeeded.", []string{"db", "kind"}, nil)
	allowedDesc = prometheus.NewDesc("backup_allowed_age_seconds",
		"How old that record may be: one period of the kind's schedule plus the slack (records.Allowed).", []string{"db", "kind"}, nil)
	attemptDesc = prometheus.NewDesc("backup_last_attempt_success",
		"Whether the latest attempt of a kind succeeded (1) or failed (0).", []string{"db", "kind"}, nil)
)

// Collector reports db's backups to Prometheus, read from the store at each
// scrape within metrics.QueryTimeout: for every kind in schedules (kind →
// cron spec), the age of the record it is judged by and the age its
// schedule allows, the same judgement as `backup status`. A failed read
// leaves the backups out of that scrape (the handler logs it): an alert on
// them then waits, it never sees a made-up age.
func (s *Store) Collector(db string, schedules map[string]string, slack time.Duration, now func() time.Time) prometheus.Collector {
	return &collector{s: s, db: db, schedules: schedules, slack: slack, now: now}
}

type collector struct {
	s         *Store
	db        string
	schedules map[string]string
	slack     time.Duration
	now       func() time.Time
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastSuccessDesc
	ch <- ageDesc
	ch <- allowedDesc
	ch <- attemptDesc
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metrics.QueryTimeout)
	defer cancel()
	recs := map[string]*Record{}
	for _, kind := range Kinds {
		r, err := c.s.Get(ctx, c.db, kind)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(ageDesc, err)
			return
		}
		if r != nil {
			recs[kind] = r
		}
	}
	now := c.now()
	counted := Counted(recs)
	for kind, spec := range c.schedules {
		if allowed, ok := Allowed(spec, now, c.slack); ok {
			ch <- prometheus.MustNewConstMetric(allowedDesc, prometheus.GaugeValue, allowed.Seconds(), c.db, kind)
		}
		if r := counted[kind]; r != nil {
			ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, float64(r.Finished.UnixNano())/1e9, c.db, kind)
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, max(now.Sub(r.Finished).Seconds(), 0), c.db, kind)
		}
		if r := recs[kind]; r != nil {
			ok := 0.0
			if r.OK {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(attemptDesc, prometheus.GaugeValue, ok, c.db, kind)
		}
	}
}
