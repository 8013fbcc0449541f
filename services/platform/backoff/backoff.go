// Package backoff is the pause between two tries of something that failed,
// the one formula every retry loop of the shop uses: the outbox relay
// between deliveries of a message, the aggregator's peers between calls.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Delay is the pause before the try that follows failed attempt number
// attempt (1 for the first): base doubled per earlier failure, capped at
// ceiling (no cap when ceiling ≤ 0), with "equal jitter" — a uniform draw
// in the upper half of the delay — so that callers failing together do not
// retry together, yet never sooner than half the nominal delay. A base ≤ 0
// is no pause.
func Delay(attempt int, base, ceiling time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	if ceiling <= 0 {
		ceiling = math.MaxInt64
	}
	d := ceiling
	// Attempts below 1 count as the first; a shift of 62 or more overflows.
	if shift := max(attempt-1, 0); shift < 62 {
		if n := base << shift; n > 0 && n < ceiling && n>>shift == base {
			d = n
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
