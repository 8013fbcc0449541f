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
