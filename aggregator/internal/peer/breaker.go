package peer

import (
	"fmt"
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State int

// The states of a breaker.
const (
	// Closed: calls go through; consecutive failures are counted.
	Closed State = iota
	// Open: calls fail at once, without reaching the peer, until OpenFor
	// has passed.
	Open
	// HalfOpen: a few probe calls go through; one success closes the
	// circuit, one failure opens it again.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// BreakerConfig sets when a breaker opens and how it recovers.
type BreakerConfig struct {
	// Failures is how many consecutive failed calls open the circuit.
	Failures int
	// OpenFor is how long the circuit stays open before probing.
	OpenFor time.Duration
	// Probes is how many calls may be in flight while half-open.
	Probes int
}

// Outcome is what a call tells the breaker.
type Outcome int

// The outcomes of a call.
const (
	// Success: the peer answered (any status below 500).
	Success Outcome = iota
	// Failure: the peer did not answer in time, refused the connection or
	// answered 5xx.
	Failure
	// Ignored: the call ended for a reason that says nothing about the
	// peer (the caller's own deadline or cancellation).
	Ignored
)

// Breaker is a circuit breaker: closed, open after Failures consecutive
// failures, half-open after OpenFor, closed again after a successful probe.
// It is safe for concurrent use.
type Breaker struct {
	cfg BreakerConfig
	now func() time.Time

	mu       sync.Mutex
	state    State
	failures int
	openedAt time.Time
	probes   int
}

// NewBreaker returns a closed breaker; zero fields of cfg take the
// defaults 5 failures, 5s, 1 probe.
func NewBreaker(cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	if cfg.Probes <= 0 {
		cfg.Probes = 1
	}
	return &Breaker{cfg: cfg, now: time.Now}
}

// State returns the breaker's state now (an open circuit whose time is up
// reads as half-open).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && b.now().Sub(b.openedAt) >= b.cfg.OpenFor {
		return HalfOpen
	}
	return b.state
}

// Allow asks to make one call. It returns the function that reports the
// call's outcome (call it exactly once), or, when the circuit is open, how
// long until it probes again.
func (b *Breaker) Allow() (done func(Outcome), retryIn time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.state == Open {
		if left := b.cfg.OpenFor - now.Sub(b.openedAt); left > 0 {
			return nil, left, false
		}
		b.state, b.probes = HalfOpen, 0
	}
	probe := b.state == HalfOpen
	if probe {
		if b.probes >= b.cfg.Probes {
			return nil, b.cfg.OpenFor, false
		}
		b.probes++
	}
	var once sync.Once
	return func(o Outcome) { once.Do(func() { b.record(probe, o) }) }, 0, true
}

func (b *Breaker) record(probe bool, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe && b.state == HalfOpen {
		b.probes--
	}
	switch o {
	case Success:
		if b.state == HalfOpen || b.state == Closed {
			b.state, b.failures = Closed, 0
		}
	case Failure:
		switch b.state {
		case HalfOpen:
			b.trip()
		case Closed:
			b.failures++
			if b.failures >= b.cfg.Failures {
				b.trip()
			}
		}
	}
}

func (b *Breaker) trip() {
	b.state, b.openedAt, b.failures, b.probes = Open, b.now(), 0, 0
}
