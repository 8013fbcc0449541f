// Package httpx is the HTTP glue every service shares: handlers that return
// errors, the one adapter that turns an error into an
// application/problem+json response (RFC 9457) and logs it once, strict JSON
// decoding (required fields, text that is UTF-8 without NUL), the router
// whose routes refuse parameters that are not text, and the middleware
// every request goes through (request id, access log, panic recovery).
package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// ProblemContentType is the media type of every error body.
const ProblemContentType = "application/problem+json"

// ProblemTypeBase prefixes a problem's slug to make its stable type URI.
const ProblemTypeBase = "https://mylittleshopping.dev/problems/"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Instance string              `json:"instance,omitempty"`
	Errors   []apierr.FieldError `json:"errors,omitempty"`
}

// HandlerFunc is an HTTP handler that reports failure by returning an error;
// Handle writes the response for it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to http.Handler: a returned error becomes a problem+json
// response, logged once (4xx at Debug, 5xx at Error).
func Handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			Error(w, r, err)
		}
	})
}

// Error writes err as a problem+json response and logs it. Internal errors
// show a generic detail: their text is for the log, not for the client.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := apierr.As(err)
	if !ok {
		e = &apierr.Error{Kind: apierr.Internal, Err: err}
	}
	status := e.Kind.Status()
	log := logging.FromContext(r.Context())
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	} else {
		log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	slug := e.Code
	if slug == "" {
		slug = e.Kind.String()
	}
	p := Problem{
		Type:     ProblemTypeBase + slug,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   e.Error(),
		Instance: RequestID(r.Context()),
		Errors:   e.Fields,
	}
	if e.Kind == apierr.Internal {
		p.Detail = "an internal error occurred; quote the instance id to support"
	}
	if e.Kind == apierr.Unauthenticated && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mylittleshopping"`)
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	WriteProblem(w, p)
}

// WriteProblem writes p as the response.
func WriteProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}
