package servicetest

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Logs collects the lines services log, for the tests that read them; many
// goroutines and processes may write into one.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail is the last n lines written.
func (l *Logs) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Logger returns a JSON logger of a component named name at level
// (platform/logging, as main builds it) that writes into l and through t,
// so that its lines show with the test's output when it fails or runs
// with -v: for a fake that runs beside a service.
func (l *Logs) Logger(t testing.TB, name, level string) hclog.Logger {
	return logging.New(name, io.MultiWriter(l, testWriter{t}), level)
}

// testWriter writes each line through t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
