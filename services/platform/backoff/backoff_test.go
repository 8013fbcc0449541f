package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/backoff"
)

func TestBackoffDoublesCapsAndJitters(t *testing.T) {
	t.Parallel()
	const base, max = 100 * time.Millisecond, time.Second
	tests := []struct {
		attempt  int
		min, top time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // 1.6s capped
		{62, 500 * time.Millisecond, time.Second},
		{64, 500 * time.Millisecond, time.Second}, // the shift would overflow
		{1000, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff.Delay(tt.attempt, base, max)
			if d < tt.min || d > tt.top {
				t.Fatalf("attempt %d: got %v, want within [%v, %v]", tt.attempt, d, tt.min, tt.top)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: got %d distinct delays in 200 draws, want jitter", tt.attempt, len(seen))
		}
	}
}

// TestDelayUncapped is the aggregator's peers' use: no ceiling, the delay
// doubles for as long as the attempts go, and never overflows.
func TestDelayUncapped(t *testing.T) {
	t.Parallel()
	const base = 50 * time.Millisecond
	tests := []struct {
		attempt  int
		min, top time.Duration
	}{
		{0, 25 * time.Millisecond, 50 * time.Millisecond}, // counts as the first
		{1, 25 * time.Millisecond, 50 * time.Millisecond},
		{3, 100 * time.Millisecond, 200 * time.Millisecond},
		{10, 12800 * time.Millisecond, 25600 * time.Millisecond},
		{200, math.MaxInt64 / 2, math.MaxInt64},
	}
	for _, tt := range tests {
		for range 200 {
			if d := backoff.Delay(tt.attempt, base, 0); d < tt.min || d > tt.top {
				t.Fatalf("attempt %d: got %v, want within [%v, %v]", tt.attempt, d, tt.min, tt.top)
			}
		}
	}
	if d := backoff.Delay(3, 0, time.Second); d != 0 {
		t.Errorf("base 0: got %v, want no pause", d)
	}
}
