package logging

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// ForTest returns a debug-level JSON logger writing through t.Log, so a
// test's logs show only when it fails or runs with -v.
func ForTest(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       t.Name(),
		Level:      hclog.Trace,
		Output:     testWriter{t},
		JSONFormat: true,
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
