package peer

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The outcomes of an attempt, as peer_calls_total counts them. A 4xx (the
// caller's request was at fault) and a load shed for one request are the
// peer answering as designed, never an error, as for the breaker.
const (
	outcomeOK          = "ok"           // answered, below 400
	outcomeClientError = "client_error" // answered 4xx
	outcomeShed        = "shed"         // answered a 503 that sheds this one request (Shedding)
	outcomeError       = "error"        // answered 5xx
	outcomeUnavailable = "unavailable"  // not called (circuit open, MaxInFlight reached) or not reached
	outcomeTimeout     = "timeout"      // the attempt's deadline passed
	outcomeCancelled   = "cancelled"    // the caller's own deadline or cancellation ended it
)

var outcomes = []string{outcomeOK, outcomeClientError, outcomeShed, outcomeError, outcomeUnavailable, outcomeTimeout, outcomeCancelled}

// Metrics reports the calls of a process's peers and their breakers to
// Prometheus: peer_calls_total{peer, outcome} counts attempts (a retry is
// one more), peer_call_duration_seconds{peer} times those that went out
// until the answer's headers, and peer_breaker_state{peer} is each
// breaker's state at scrape time (0 closed, 1 half-open, 2 open). Pass it
// to every peer (Config.Metrics) and register it with the server's
// registry. It is safe for concurrent use.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	breaker  *prometheus.Desc

	mu    sync.Mutex
	peers map[string]*Peer
}

// NewMetrics returns the peers' metrics, with no peer yet.
func NewMetrics() *Metrics {
	return &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peer_calls_total",
			Help: "Attempts of calls to a service, by outcome: ok, client_error (4xx), shed (503 busy), error (5xx), unavailable (circuit open, too many in flight, unreachable), timeout, cancelled (the caller's budget).",
		}, []string{"peer", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "peer_call_duration_seconds",
			Help:    "Time of the attempts that went out to a service, until its answer's headers.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"peer"}),
		breaker: prometheus.NewDesc("peer_breaker_state",
			"A service's circuit breaker: 0 closed, 1 half-open, 2 open.", []string{"peer"}, nil),
		peers: map[string]*Peer{},
	}
}

// add reports p's calls and breaker; each peer has a name of its own.
func (m *Metrics) add(p *Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.peers[p.cfg.Name]; dup {
		panic(fmt.Sprintf("peer: two peers named %q report to the same metrics", p.cfg.Name))
	}
	m.peers[p.cfg.Name] = p
	for _, o := range outcomes {
		m.calls.WithLabelValues(p.cfg.Name, o) // every series from the start, at 0
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.duration.Describe(ch)
	ch <- m.breaker
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.duration.Collect(ch)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.peers {
		ch <- prometheus.MustNewConstMetric(m.breaker, prometheus.GaugeValue, breakerValue(p.State()), name)
	}
}

// breakerValue orders the states by how much of the peer is cut off.
func breakerValue(s State) float64 {
	switch s {
	case HalfOpen:
		return 1
	case Open:
		return 2
	}
	return 0
}

// observe counts one attempt that started at start.
func (m *Metrics) observe(peer string, start time.Time, resp *http.Response, shed bool, err error) {
	outcome, sent := outcomeOf(resp, shed, err)
	m.calls.WithLabelValues(peer, outcome).Inc()
	if sent {
		m.duration.WithLabelValues(peer).Observe(time.Since(start).Seconds())
	}
}

// outcomeOf names what an attempt came to, and whether it went out to the
// peer (a refusal of the breaker or of the cap on calls in flight did not).
func outcomeOf(resp *http.Response, shed bool, err error) (outcome string, sent bool) {
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			return outcomeError, true
		}
		switch pe.Reason {
		case CircuitOpen, Busy:
			return outcomeUnavailable, false
		case Unreachable:
			return outcomeUnavailable, true
		case Timeout:
			return outcomeTimeout, true
		case Cancelled:
			return outcomeCancelled, true
		}
		return outcomeError, true
	}
	switch {
	case shed:
		return outcomeShed, true
	case resp.StatusCode >= 500:
		return outcomeError, true
	case resp.StatusCode >= 400:
		return outcomeClientError, true
	}
	return outcomeOK, true
}
