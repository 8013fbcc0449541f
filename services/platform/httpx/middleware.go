package httpx

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/logging"
)

// RequestIDHeader carries a request's id from the edge to every service.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id, for work started outside a request
// (a relay, a recovery loop) that calls other services.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// validRequestID accepts the ids our own and common proxies generate and
// refuses what could forge log lines or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '='
		if !ok {
			return false
		}
	}
	return true
}

// Middleware wraps every request of a service, outermost first: request id
// (taken from X-Request-ID or generated, echoed in the response, put in the
// context with a logger that names it), access log, panic recovery.
func Middleware(log hclog.Logger, next http.Handler) http.Handler {
	return requestID(log, accessLog(recoverPanics(next)))
}

func requestID(log hclog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := WithRequestID(r.Context(), id)
		ctx = logging.WithFields(ctx, "request_id", id)
		ctx = logging.WithContext(ctx, log.With("request_id", id))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusRecorder remembers what a handler wrote, for the access log and for
// recovery (which must not write a second header).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		log := logging.FromContext(r.Context())
		args := []any{
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"remote", r.RemoteAddr,
		}
		// Health probes arrive every few seconds from Consul, and scrapes
		// from Prometheus: keep them out of the default level.
		if isHealthPath(r.URL.Path) {
			log.Trace("request", args...)
			return
		}
		log.Info("request", args...)
	})
}

func isHealthPath(p string) bool {
	return p == "/health/live" || p == "/health/ready" || p == "/metrics"
}

func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := w.(*statusRecorder)
		if !ok {
			rec = &statusRecorder{ResponseWriter: w}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // net/http's own way to abort a response
			}
			logging.FromContext(r.Context()).Error("handler panicked",
				"method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if rec.status != 0 {
				return // the response has started; the client sees a cut body
			}
			WriteProblem(rec, Problem{
				Type:     ProblemTypeBase + "internal",
				Title:    http.StatusText(http.StatusInternalServerError),
				Status:   http.StatusInternalServerError,
				Detail:   "an internal error occurred; quote the instance id to support",
				Instance: RequestID(r.Context()),
			})
		}()
		next.ServeHTTP(rec, r)
	})
}

// PropagateRequestID is an http.RoundTripper that forwards the request id of
// the outgoing request's context as X-Request-ID, so one id follows a
// request through every service.
type PropagateRequestID struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (p PropagateRequestID) RoundTrip(r *http.Request) (*http.Response, error) {
	base := p.Base
	if base == nil {
		base = http.DefaultTransport
	}
	id := RequestID(r.Context())
	if id == "" || r.Header.Get(RequestIDHeader) != "" {
		return base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set(RequestIDHeader, id)
	return base.RoundTrip(r)
}
