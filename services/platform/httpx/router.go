package httpx

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// NewRouter returns a gorilla/mux router whose unknown paths (404) and wrong
// methods (405) are answered in problem+json like every other error, whose
// routes refuse path and query parameters that are not text (see
// TextParams), and which names each request's route by its template for
// the metrics (SetRoute). Pass it as the BaseRouter of a generated server.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = Handle(func(w http.ResponseWriter, r *http.Request) error {
		return apierr.Errorf(apierr.NotFound, "no route %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = Handle(func(w http.ResponseWriter, r *http.Request) error {
		return apierr.Errorf(apierr.MethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
	})
	// Middleware of a mux router runs once a route matched, when the path's
	// variables are known by name, and the route's template too (for the
	// metrics, see SetRoute: a 404 or a 405 never gets here, and stays
	// unnamed).
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setMuxRoute(r)
			if err := TextParams(r); err != nil {
				Error(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	return r
}

// TextParams checks that every path variable and every query parameter of
// r (its name and each value) is valid UTF-8 without NUL characters: the
// generated parameter binding passes any string on, PostgreSQL refuses a
// NUL in text (a client's input would become a 500), and text that is not
// UTF-8 is not what a client meant. It is an Invalid error naming the
// parameter, or nil.
func TextParams(r *http.Request) error {
	var faults []apierr.FieldError
	vars := mux.Vars(r)
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if d := textDetail(vars[name]); d != "" {
			faults = append(faults, apierr.FieldError{Field: name, Detail: d})
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// A broken escape (%zz) or a semicolon: the value the client
		// meant is unknown, so it is refused rather than dropped.
		return apierr.InvalidFields(apierr.FieldError{Field: "query", Detail: "must be a query string of name=value pairs joined by & with valid %-escapes"})
	}
	names = names[:0]
	for name := range query {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if d := textDetail(name); d != "" {
			faults = append(faults, apierr.FieldError{Field: "query", Detail: "has a parameter name that " + d})
			continue
		}
		for _, v := range query[name] {
			if d := textDetail(v); d != "" {
				faults = append(faults, apierr.FieldError{Field: name, Detail: d})
				break
			}
		}
	}
	if len(faults) > 0 {
		return apierr.InvalidFields(faults...)
	}
	return nil
}

// textDetail says what is wrong with s as text, or "".
func textDetail(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8 text"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL characters (%00)"
	}
	return ""
}

// Serve runs h and writes its error, if any: the body of the one-line
// adapters that turn a generated ServerInterface method (which returns
// nothing) into an error-returning handler.
func Serve(w http.ResponseWriter, r *http.Request, h HandlerFunc) {
	if err := h(w, r); err != nil {
		Error(w, r, err)
	}
}

// ParamError is the ErrorHandlerFunc of oapi-codegen's gorilla servers: a
// path, query or header parameter that fails to bind is a 400 naming it, in
// words a client understands ("must be a UUID"), never the binder's own
// text (which names Go types). Each generated package declares its own
// error types (RequiredParamError, InvalidParamFormatError, …), all with a
// ParamName field, so the name is read by reflection rather than by a
// switch repeated in every service.
func ParamError(w http.ResponseWriter, r *http.Request, err error) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.Indirect(reflect.ValueOf(e))
		if v.Kind() != reflect.Struct {
			continue
		}
		if f := v.FieldByName("ParamName"); f.IsValid() && f.Kind() == reflect.String {
			name := f.String()
			Error(w, r, apierr.InvalidFields(apierr.FieldError{Field: name, Detail: paramDetail(r, name, v.Type().Name(), err)}))
			return
		}
	}
	Error(w, r, apierr.Errorf(apierr.Invalid, "a parameter of the request is malformed"))
}

// paramDetail says what is wrong with parameter name, from the generated
// error's type (kind) and the parse error it wraps.
func paramDetail(r *http.Request, name, kind string, err error) string {
	switch kind {
	case "RequiredParamError", "RequiredHeaderError":
		return "is required"
	case "TooManyValuesForParamError":
		return "must be given once"
	case "UnescapedCookieParamError":
		return "must be a correctly escaped cookie value"
	}
	var (
		num *strconv.NumError
		tp  *time.ParseError
		esc url.EscapeError
	)
	switch {
	case errors.As(err, &num) && num.Func == "ParseBool":
		return "must be true or false"
	case errors.As(err, &num) && errors.Is(num.Err, strconv.ErrRange):
		return "is out of range"
	case errors.As(err, &num) && num.Func == "ParseFloat":
		return "must be a number"
	case errors.As(err, &num):
		return "must be an integer"
	case errors.As(err, &tp):
		// The binder tries RFC 3339, then a bare date: the error is the
		// last one's, but the shop's parameters are date-times.
		return "must be an RFC 3339 date-time like 2026-01-31T12:00:00Z"
	case errors.As(err, &esc):
		return "must be correctly %-escaped"
	}
	// What is left are the types that parse themselves: in the shop's
	// specs, UUIDs (google/uuid's errors have no type to match).
	for _, v := range paramValues(r, name) {
		for _, part := range strings.Split(v, ",") {
			if _, uerr := uuid.Parse(part); uerr != nil {
				return "must be a UUID like 3fa85f64-5717-4562-b3fc-2c963f66afa6"
			}
		}
	}
	return "is not in the format this parameter takes"
}

// paramValues are the values the client sent for parameter name, wherever
// it is (path, query or header).
func paramValues(r *http.Request, name string) []string {
	if v, ok := mux.Vars(r)[name]; ok {
		return []string{v}
	}
	if vs, ok := r.URL.Query()[name]; ok {
		return vs
	}
	return r.Header.Values(name)
}
