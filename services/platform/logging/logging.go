// Package logging builds the go-hclog JSON loggers every process uses and
// carries a request-scoped logger through a context, so that a line logged
// deep in a handler still names its request id.
package logging

import (
	"context"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
)

// New returns the root JSON logger of a process. service names the component
// in every line ("service" field), level is an hclog level name ("info" when
// empty or unknown).
func New(service string, w io.Writer, level string) hclog.Logger {
	if w == nil {
		w = os.Stdout
	}
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            service,
		Level:           lvl,
		Output:          w,
		JSONFormat:      true,
		IncludeLocation: false,
		TimeFormat:      "2006-01-02T15:04:05.000Z07:00",
	}).With("service", service)
}

// Starting logs a process's start in two lines: "starting", short, then
// "settings" with what it runs with (config.Fields: secrets masked).
//
// The first line is short on purpose. The log collector tells one
// container's log file from another's by the file's first 1000 bytes
// (filelog's fingerprint, nomad/log-collector.nomad.hcl), and the Docker
// engine writes the allocation's id right after a file's first line. With
// the settings in it, that line was 2.9 KB and the same, but for its
// millisecond, in every instance of a service: two aggregators started in
// the same millisecond looked like one file, and the second one's lines
// never reached VictoriaLogs.
func Starting(log hclog.Logger, settings ...any) {
	log.Info("starting")
	log.Info("settings", settings...)
}

type ctxKey struct{}

// fallback is used only when a context carries no logger: a line must never
// be dropped because a middleware was left out.
var fallback = New("unscoped", os.Stderr, "info")

// WithContext returns a context that carries log.
func WithContext(ctx context.Context, log hclog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, log)
}

// FromContext returns the logger put in ctx by WithContext (the request's
// logger, with its request id) or a stderr JSON logger when there is none.
func FromContext(ctx context.Context) hclog.Logger {
	if log, ok := ctx.Value(ctxKey{}).(hclog.Logger); ok {
		return log
	}
	return fallback
}

// With returns a context whose logger has the extra key/value pairs, for
// fields learnt during a request (the user id once authenticated, …).
func With(ctx context.Context, args ...any) context.Context {
	return WithContext(ctx, FromContext(ctx).With(args...))
}

type fieldsKey struct{}

// WithFields returns a context carrying key/value pairs that Of adds to a
// logger: what every line caused by a request must name (its request id),
// set by httpx's middleware and by the outbox relay for a delivery.
func WithFields(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(fieldsKey{}).([]any)
	return context.WithValue(ctx, fieldsKey{}, append(prev[:len(prev):len(prev)], args...))
}

// Of returns log with the fields ctx carries (WithFields), so that a
// component's own logger names the request its line belongs to.
func Of(ctx context.Context, log hclog.Logger) hclog.Logger {
	if f, _ := ctx.Value(fieldsKey{}).([]any); len(f) > 0 {
		return log.With(f...)
	}
	return log
}

// NewNull returns a logger that discards everything, for code paths whose
// logs a test does not look at.
func NewNull() hclog.Logger { return hclog.NewNullLogger() }
