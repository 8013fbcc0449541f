// Package reply reads what a service answered through its generated
// client: a success, a problem of the caller's making to pass on to the
// client as it is (a 400 naming a field, a 409 out-of-stock), a service
// shedding load for this one request (503 busy with Retry-After, passed on
// as it is too: the client retries that request, the capability is up), or
// no usable answer at all (the call failed, or the service answered 5xx),
// which the aggregator turns into a fast 503 naming the capability that is
// missing ("catalogue is unavailable"), never into a 500.
package reply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Response is what every generated client's *XxxResponse provides.
type Response interface {
	StatusCode() int
	GetBody() []byte
}

// kindOfStatus maps a status back to its apierr kind.
var kindOfStatus = func() map[int]apierr.Kind {
	m := map[int]apierr.Kind{}
	for k := apierr.Internal; k <= apierr.Unavailable; k++ {
		m[k.Status()] = k
	}
	return m
}()

// Check returns nil when the call succeeded (a status below 400), the
// service's problem as an apierr error for a 4xx or a 503 that sheds load
// (peer.Shedding), and an Unavailable error naming capability when the
// call failed or the service answered another 5xx.
func Check(ctx context.Context, capability string, resp Response, err error) error {
	if err != nil {
		return Unavailable(ctx, capability, err)
	}
	switch s := resp.StatusCode(); {
	case s == http.StatusServiceUnavailable && shedding(resp):
		return Problem(resp)
	case s >= 500:
		return Unavailable(ctx, capability, fmt.Errorf("answered %d: %s", s, snippet(resp.GetBody())))
	case s >= 400:
		return Problem(resp)
	}
	return nil
}

// Unavailable is the 503 of a capability whose service could not answer.
// The cause goes to the log; the client reads which capability is missing
// and when to come back. When the aggregator itself had too many calls in
// flight to the service (peer.Busy), the capability is up and only this
// request is shed: the 503 says so (type …/busy), as a service's own
// shedding does.
func Unavailable(ctx context.Context, capability string, cause error) error {
	retry := time.Second
	var pe *peer.Error
	if errors.As(cause, &pe) && pe.RetryAfter > retry {
		retry = pe.RetryAfter
	}
	if pe != nil && pe.Reason == peer.Busy {
		logging.FromContext(ctx).Warn("request shed", "capability", capability, "error", cause)
		return &apierr.Error{Kind: apierr.Unavailable, Code: peer.BusySlug, RetryAfter: retry,
			Err: fmt.Errorf("%s is busy; retry this request after the Retry-After delay", capability)}
	}
	logging.FromContext(ctx).Warn("capability unavailable", "capability", capability, "error", cause)
	return apierr.RetryLater(apierr.Unavailable, retry, fmt.Errorf("%s is unavailable; retry in a few seconds", capability))
}

// Problem returns the 4xx (or shedding 503) answer resp carries as an
// apierr error with the same status, type, detail, field errors and
// Retry-After, so that httpx writes it to the client as the service wrote
// it (with the aggregator's request id).
func Problem(resp Response) error {
	p := ParseProblem(resp)
	kind, ok := kindOfStatus[resp.StatusCode()]
	if !ok {
		kind = apierr.Invalid
	}
	e := &apierr.Error{Kind: kind, Err: errors.New(p.Detail), Fields: p.Errors}
	if p.Detail == "" {
		e.Err = errors.New(http.StatusText(resp.StatusCode()))
	}
	if slug := Slug(p); slug != "" && slug != kind.String() {
		e.Code = slug
	}
	if s := Header(resp, "Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// shedding reports whether resp is a service's answer that sheds load for
// this request alone.
func shedding(resp Response) bool {
	h := http.Header{}
	for _, name := range []string{"Retry-After", "Content-Type"} {
		if v := Header(resp, name); v != "" {
			h.Set(name, v)
		}
	}
	return peer.Shedding(resp.StatusCode(), h, resp.GetBody())
}

// ParseProblem reads resp's body as a problem document; a body that is not
// one gives a problem with the status alone.
func ParseProblem(resp Response) httpx.Problem {
	var p httpx.Problem
	if err := json.Unmarshal(resp.GetBody(), &p); err != nil || p.Status == 0 {
		p.Status = resp.StatusCode()
	}
	return p
}

// Slug is the last segment of a problem's type ("out-of-stock"), or "".
func Slug(p httpx.Problem) string {
	s, ok := strings.CutPrefix(p.Type, httpx.ProblemTypeBase)
	if !ok {
		return ""
	}
	return s
}

// Header returns a header of the HTTP response behind a generated
// response. The generated types all keep it in their HTTPResponse field
// but share no method to reach it, so it is read by reflection, here only.
func Header(resp Response, name string) string {
	v := reflect.ValueOf(resp)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("HTTPResponse")
	if !f.IsValid() || f.IsNil() {
		return ""
	}
	hr, ok := f.Interface().(*http.Response)
	if !ok {
		return ""
	}
	return hr.Header.Get(name)
}

// Write checks resp as Check does and, on success, writes its body to w
// with its status, copying the named headers (a Location only when it is
// a public /v1 path).
func Write(w http.ResponseWriter, r *http.Request, capability string, resp Response, err error, headers ...string) error {
	if err := Check(r.Context(), capability, resp, err); err != nil {
		return err
	}
	for _, h := range headers {
		v := Header(resp, h)
		if v == "" || (h == "Location" && !strings.HasPrefix(v, "/v1/")) {
			continue
		}
		w.Header().Set(h, v)
	}
	body := resp.GetBody()
	if len(body) == 0 {
		w.WriteHeader(resp.StatusCode())
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode())
	_, err = w.Write(body)
	return err
}

// snippet is the start of a body, for logs.
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
