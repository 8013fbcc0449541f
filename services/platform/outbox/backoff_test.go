package outbox

import (
	"testing"
	"time"
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
			d := backoff(tt.attempt, base, max)
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
