package logging_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/logging"
)

// A component's own logger names the request its line belongs to when the
// context carries it, and only then; fields add up along the context.
func TestOfAddsTheContextsFields(t *testing.T) {
	var out bytes.Buffer
	log := logging.New("orders", &out, "info")
	ctx := logging.WithFields(context.Background(), "request_id", "req-1")
	logging.Of(ctx, log).Info("order created")
	logging.Of(logging.WithFields(ctx, "attempt", 2), log).Info("retried")
	logging.Of(context.Background(), log).Info("sweeper started")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, want := range []struct{ has, hasNot string }{
		{`"request_id":"req-1"`, `"attempt"`},
		{`"attempt":2`, `"unused"`},
		{`"service":"orders"`, `"request_id"`},
	} {
		if !strings.Contains(lines[i], want.has) || strings.Contains(lines[i], want.hasNot) {
			t.Errorf("line %d = %s; want %s and not %s", i, lines[i], want.has, want.hasNot)
		}
	}
	if !strings.Contains(lines[1], `"request_id":"req-1"`) {
		t.Errorf("line 1 = %s; want the request id kept", lines[1])
	}
}

// A process's first line is short whatever its settings, so that Docker's
// envelope (with the allocation's id) comes within the log collector's
// fingerprint; the settings follow on the second line.
func TestStartingKeepsTheFirstLineShort(t *testing.T) {
	var out bytes.Buffer
	log := logging.New("aggregator", &out, "info")
	var settings []any
	for i := range 60 {
		settings = append(settings, "AGGREGATOR_SETTING_"+strings.Repeat("X", i%7)+string(rune('A'+i%26)), strings.Repeat("v", 30))
	}
	logging.Starting(log, settings...)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out.String())
	}
	// Docker escapes each quote: the line takes about twice its length in
	// the file, and its envelope's allocation id must fit in 1000 bytes.
	if n := len(lines[0]); n > 200 || !strings.Contains(lines[0], `"@message":"starting"`) {
		t.Errorf("first line (%d bytes) = %s; want a short \"starting\"", n, lines[0])
	}
	if !strings.Contains(lines[1], `"@message":"settings"`) || !strings.Contains(lines[1], `"AGGREGATOR_SETTING_A":"`) {
		t.Errorf("second line = %s; want the settings", lines[1])
	}
}
