// Package apierr is the one error vocabulary of the services: an error is
// given a Kind where it is understood (the store, the domain rules, the JSON
// boundary) and httpx turns the kind into an HTTP status and a problem+json
// body. Nothing else decides statuses.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Kind classifies an error by what the client can do about it.
type Kind int

// The kinds. Internal is the zero value so that an unclassified error is
// never shown to a client as its own fault.
const (
	Internal             Kind = iota // a bug or a broken dependency: 500, details hidden
	Invalid                          // the request is malformed or breaks a rule: 400
	Unauthenticated                  // no or bad credentials: 401
	PaymentRequired                  // the payment was refused: 402
	Forbidden                        // authenticated but not allowed: 403
	NotFound                         // no such object (or not yours): 404
	MethodNotAllowed                 // the path exists, the method does not: 405
	Conflict                         // the object's state forbids it: 409
	PreconditionFailed               // If-Match did not match: 412
	TooLarge                         // the body is over the limit: 413
	UnsupportedMediaType             // the body is not JSON: 415
	Unprocessable                    // well-formed but inconsistent (idempotency key reused with another body): 422
	TooManyRequests                  // slow down: 429 (Retry-After)
	Unavailable                      // a dependency is down, retry later: 503
)

var kinds = [...]struct {
	status int
	slug   string
}{
	Internal:             {http.StatusInternalServerError, "internal"},
	Invalid:              {http.StatusBadRequest, "invalid-request"},
	Unauthenticated:      {http.StatusUnauthorized, "unauthenticated"},
	PaymentRequired:      {http.StatusPaymentRequired, "payment-required"},
	Forbidden:            {http.StatusForbidden, "forbidden"},
	NotFound:             {http.StatusNotFound, "not-found"},
	MethodNotAllowed:     {http.StatusMethodNotAllowed, "method-not-allowed"},
	Conflict:             {http.StatusConflict, "conflict"},
	PreconditionFailed:   {http.StatusPreconditionFailed, "precondition-failed"},
	TooLarge:             {http.StatusRequestEntityTooLarge, "body-too-large"},
	UnsupportedMediaType: {http.StatusUnsupportedMediaType, "unsupported-media-type"},
	Unprocessable:        {http.StatusUnprocessableEntity, "unprocessable"},
	TooManyRequests:      {http.StatusTooManyRequests, "too-many-requests"},
	Unavailable:          {http.StatusServiceUnavailable, "unavailable"},
}

// Status is the HTTP status of the kind.
func (k Kind) Status() int {
	if k < 0 || int(k) >= len(kinds) {
		return http.StatusInternalServerError
	}
	return kinds[k].status
}

// String is the kind's stable slug, the last segment of a problem's type.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kinds) {
		return "internal"
	}
	return kinds[k].slug
}

// Error is an error with a kind and, optionally, a more precise problem code
// and the extra facts a problem body carries.
type Error struct {
	Kind Kind
	Err  error
	// Code, when set, replaces the kind's slug in the problem type
	// ("out-of-stock" rather than "conflict"), so clients can branch on it.
	Code string
	// Fields lists per-field messages of a validation error.
	Fields []FieldError
	// RetryAfter, when positive, becomes a Retry-After header.
	RetryAfter time.Duration
}

// FieldError names one field of the request and what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// E gives err a kind. A nil err stays nil.
func E(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Err: err}
}

// Errorf is E with a formatted message; %w wraps as in fmt.Errorf.
func Errorf(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// WithCode is a kinded error whose problem type is code rather than the
// kind's slug.
func WithCode(kind Kind, code string, err error) error {
	return &Error{Kind: kind, Code: code, Err: err}
}

// InvalidFields is a validation error listing every field at fault, so that a
// client fixes a form in one round trip.
func InvalidFields(fields ...FieldError) error {
	msg := "invalid request"
	if len(fields) == 1 {
		msg = fields[0].Field + ": " + fields[0].Detail
	} else if len(fields) > 1 {
		msg = fmt.Sprintf("%d fields are invalid", len(fields))
	}
	return &Error{Kind: Invalid, Err: errors.New(msg), Fields: fields}
}

// RetryLater is a TooManyRequests or Unavailable error that tells the client
// when to come back.
func RetryLater(kind Kind, after time.Duration, err error) error {
	return &Error{Kind: kind, Err: err, RetryAfter: after}
}

// PostgreSQL error codes that mean the same whatever the statement. A
// broken constraint (class 23) is not among them: what it means is the
// store's to say (pgdb.Constraints), and one no store names is a 500.
const (
	pgSerialization = "40001"
	pgDeadlock      = "40P01"
	// pgDataExceptionClass is SQLSTATE class 22, data exceptions: a value
	// PostgreSQL cannot take (a NUL or invalid byte in text, 22021/22P05; a
	// number or time out of range, 22003/22008). The shop's own code sends
	// no such value, so it came from the request: the client's fault, never
	// a 500 that would count against the service as a peer failure.
	pgDataExceptionClass = "22"
)

// As returns the *Error in err's chain, classifying the errors of pgx and of
// context that carry a kind of their own; ok is false for an unclassified
// error (which is Internal). The details it gives PostgreSQL's errors are
// words of its own: PostgreSQL's name its internals, and stay in the log
// (httpx logs err).
func As(err error) (e *Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return &Error{Kind: NotFound, Err: err}, true
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Unavailable, Err: err}, true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == pgSerialization, pg.Code == pgDeadlock:
			return &Error{Kind: Unavailable, RetryAfter: time.Second,
				Err: errors.New("the request met a concurrent change of the same data; retry it")}, true
		case strings.HasPrefix(pg.Code, pgDataExceptionClass):
			return &Error{Kind: Invalid, Err: errors.New("a value of the request is out of range or is not text the shop can store")}, true
		}
	}
	return nil, false
}

// KindOf is the kind of err: its own, or the one As derives, or Internal.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
