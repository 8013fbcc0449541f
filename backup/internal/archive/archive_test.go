package archive

import (
	"testing"
	"time"
)

func TestRPO(t *testing.T) {
	t.Parallel()
	const seg = 16 << 20
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	archived := now.Add(-42 * time.Second)
	tests := []struct {
		name     string
		cur      uint64
		ready    int64
		archived *time.Time
		want     time.Duration
	}{
		{"idle after a switch, all archived", 7 * seg, 0, &archived, 0},
		{"written since the last archived segment", 7*seg + 0x28, 0, &archived, 42 * time.Second},
		{"at a boundary but a segment waits", 7 * seg, 1, &archived, 42 * time.Second},
		{"nothing archived yet", 7*seg + 1, 0, nil, time.Hour},
	}
	for _, tt := range tests {
		if got := RPO(tt.cur, seg, tt.ready, tt.archived, started, now); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	if n, err := ParseLSN("16/B374D848"); err != nil || n != 0x16B374D848 {
		t.Errorf("ParseLSN: got %x, %v", n, err)
	}
	if n, err := parseSize("16MB"); err != nil || n != 16<<20 {
		t.Errorf("parseSize: got %d, %v", n, err)
	}
	failedLater := Status{FailedCount: 1, LastArchivedAt: ptr(time.Unix(10, 0)), LastFailedAt: ptr(time.Unix(20, 0))}
	recovered := Status{FailedCount: 1, LastArchivedAt: ptr(time.Unix(30, 0)), LastFailedAt: ptr(time.Unix(20, 0))}
	if !failedLater.Failing() || recovered.Failing() || (Status{}).Failing() {
		t.Error("Failing: want true only when the last failure is newer than the last success")
	}
}

func ptr[T any](v T) *T { return &v }
