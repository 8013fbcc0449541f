package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

type item struct {
	Name  string `json:"name"`
	Price int64  `json:"price"`
}

// echo decodes an item and writes it back: the handler of the decoding tests.
func echo(w http.ResponseWriter, r *http.Request) error {
	var it item
	if err := httpx.DecodeJSONLimit(w, r, &it, 64); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, it)
}

func newServer(t *testing.T, routes map[string]httpx.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.Handle(pattern, httpx.Handle(h))
	}
	srv := httptest.NewServer(httpx.Middleware(logging.ForTest(t), mux))
	t.Cleanup(srv.Close)
	return srv
}

// checkProblem asserts resp is a valid problem+json body with the status,
// problem type slug and the request id as instance, and returns it.
func checkProblem(t *testing.T, resp *http.Response, status int, slug string) httpx.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("got status %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Errorf("got Content-Type %q, want %q", ct, httpx.ProblemContentType)
	}
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	var p httpx.Problem
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not a problem document: %v", err)
	}
	if p.Type != httpx.ProblemTypeBase+slug {
		t.Errorf("got type %q, want %q", p.Type, httpx.ProblemTypeBase+slug)
	}
	if p.Status != status || p.Title != http.StatusText(status) {
		t.Errorf("got status/title %d %q, want %d %q", p.Status, p.Title, status, http.StatusText(status))
	}
	if p.Detail == "" {
		t.Error("got empty detail, want a precise message")
	}
	if id := resp.Header.Get(httpx.RequestIDHeader); id == "" || p.Instance != id {
		t.Errorf("got instance %q, want the request id %q", p.Instance, id)
	}
	return p
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]httpx.HandlerFunc{"/echo": echo})
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		slug        string
		detail      string // a part of the detail the client reads
	}{
		{"valid", "application/json", `{"name":"mug","price":1250}`, 200, "", ""},
		{"valid with charset", "application/json; charset=utf-8", `{"name":"mug","price":1}`, 200, "", ""},
		{"oversized body", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "body-too-large", "larger than 64 bytes"},
		{"unknown field", "application/json", `{"name":"mug","colour":"red"}`, 400, "invalid-request", `colour: unknown field`},
		{"malformed JSON", "application/json", `{"name":"mug",}`, 400, "invalid-request", "malformed JSON"},
		{"truncated JSON", "application/json", `{"name":"mug"`, 400, "invalid-request", "ends too early"},
		{"trailing data", "application/json", `{"name":"mug"} {"name":"cup"}`, 400, "invalid-request", "more data after it"},
		{"trailing garbage", "application/json", `{"name":"mug"}xyz`, 400, "invalid-request", "trailing data"},
		{"wrong type", "application/json", `{"price":"cheap"}`, 400, "invalid-request", "price: must be an integer"},
		{"empty body", "application/json", ``, 400, "invalid-request", "empty"},
		{"wrong content type", "text/plain", `{"name":"mug"}`, 415, "unsupported-media-type", "text/plain"},
		{"missing content type", "", `{"name":"mug"}`, 415, "unsupported-media-type", "missing"},
		{"wrong charset", "application/json; charset=latin1", `{"name":"mug"}`, 415, "unsupported-media-type", "latin1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/echo", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.status == 200 {
				if resp.StatusCode != 200 {
					t.Fatalf("got status %d, want 200", resp.StatusCode)
				}
				return
			}
			p := checkProblem(t, resp, tt.status, tt.slug)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to mention %q", p.Detail, tt.detail)
			}
		})
	}
}

func TestErrorKindsBecomeStatuses(t *testing.T) {
	t.Parallel()
	secret := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	srv := newServer(t, map[string]httpx.HandlerFunc{
		"/missing": func(http.ResponseWriter, *http.Request) error {
			return apierr.Errorf(apierr.NotFound, "product %d not found", 7)
		},
		"/limited": func(http.ResponseWriter, *http.Request) error {
			return apierr.RetryLater(apierr.TooManyRequests, 1500*time.Millisecond, errors.New("too many login attempts"))
		},
		"/broken": func(http.ResponseWriter, *http.Request) error {
			return secret
		},
		"/stock": func(http.ResponseWriter, *http.Request) error {
			return apierr.WithCode(apierr.Conflict, "out-of-stock", errors.New("2 lines are out of stock"))
		},
		"/fields": func(http.ResponseWriter, *http.Request) error {
			return apierr.InvalidFields(apierr.FieldError{Field: "email", Detail: "is not an address"}, apierr.FieldError{Field: "password", Detail: "is shorter than 8 characters"})
		},
	})
	tests := []struct {
		path   string
		status int
		slug   string
		detail string
	}{
		{"/missing", 404, "not-found", "product 7 not found"},
		{"/limited", 429, "too-many-requests", "too many login attempts"},
		{"/broken", 500, "internal", "internal error"},
		{"/stock", 409, "out-of-stock", "out of stock"},
		{"/fields", 400, "invalid-request", "2 fields are invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, err := srv.Client().Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			p := checkProblem(t, resp, tt.status, tt.slug)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to contain %q", p.Detail, tt.detail)
			}
			if strings.Contains(p.Detail, "10.0.0.7") {
				t.Errorf("detail %q leaks an internal error", p.Detail)
			}
			if tt.path == "/limited" && resp.Header.Get("Retry-After") != "2" {
				t.Errorf("got Retry-After %q, want 2 (rounded up)", resp.Header.Get("Retry-After"))
			}
			if tt.path == "/fields" && len(p.Errors) != 2 {
				t.Errorf("got %d field errors, want 2", len(p.Errors))
			}
		})
	}
}

func TestPanicBecomes500WithoutStack(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.Handle("/panic", httpx.Handle(func(http.ResponseWriter, *http.Request) error {
		panic("nil map in checkout")
	}))
	srv := httptest.NewServer(httpx.Middleware(logging.New("test", &logs, "debug"), mux))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/panic", nil)
	req.Header.Set(httpx.RequestIDHeader, "req-panic-1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := checkProblem(t, resp, 500, "internal")
	if p.Instance != "req-panic-1" {
		t.Errorf("got instance %q, want req-panic-1", p.Instance)
	}
	raw, _ := json.Marshal(p)
	for _, leak := range []string{"goroutine", ".go:", "nil map"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("body %s contains %q, want no stack or panic value", raw, leak)
		}
	}
	// The stack goes to the log, with the request id.
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), `"request_id":"req-panic-1"`) {
		t.Errorf("log does not record the panic with its request id:\n%s", logs.String())
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	srv := newServer(t, map[string]httpx.HandlerFunc{"/id": func(w http.ResponseWriter, r *http.Request) error {
		seen = httpx.RequestID(r.Context())
		w.WriteHeader(http.StatusNoContent)
		return nil
	}})
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"propagated", "abc-123", true},
		{"generated when absent", "", false},
		{"replaced when unsafe", `bad id "quoted" <script>`, false},
		{"replaced when too long", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/id", nil)
			if tt.sent != "" {
				req.Header[httpx.RequestIDHeader] = []string{tt.sent}
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get(httpx.RequestIDHeader)
			if got == "" || got != seen {
				t.Fatalf("got response id %q and handler id %q, want the same non-empty id", got, seen)
			}
			if tt.kept != (got == tt.sent) {
				t.Errorf("got id %q for sent %q, want kept=%v", got, tt.sent, tt.kept)
			}
		})
	}
}

func TestPropagateRequestID(t *testing.T) {
	t.Parallel()
	var got string
	downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get(httpx.RequestIDHeader)
	}))
	defer downstream.Close()
	client := &http.Client{Transport: httpx.PropagateRequestID{}}
	ctx := httpx.WithRequestID(t.Context(), "trace-42")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, downstream.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "trace-42" {
		t.Fatalf("got downstream X-Request-ID %q, want trace-42", got)
	}
}

// RequiredParamError mimics the error types oapi-codegen generates (name
// included: ParamError tells them apart by it).
type RequiredParamError struct{ ParamName string }

func (e *RequiredParamError) Error() string {
	return "Query argument " + e.ParamName + " is required, but not found"
}

func TestRouterAndParamErrors(t *testing.T) {
	t.Parallel()
	r := httpx.NewRouter()
	r.Handle("/things", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Get("limit") == "" {
			httpx.ParamError(w, r, fmt.Errorf("bind: %w", &RequiredParamError{ParamName: "limit"}))
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})).Methods(http.MethodGet)
	srv := httptest.NewServer(httpx.Middleware(logging.ForTest(t), r))
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		status       int
		slug, detail string
	}{
		{http.MethodGet, "/nowhere", 404, "not-found", "no route GET /nowhere"},
		{http.MethodPost, "/things", 405, "method-not-allowed", "POST is not allowed on /things"},
		{http.MethodGet, "/things", 400, "invalid-request", "limit: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			p := checkProblem(t, resp, tt.status, tt.slug)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want %q", p.Detail, tt.detail)
			}
		})
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 21, 41, 0, 123456789, time.FixedZone("CET", 3600))
	id := uuid.MustParse("0190a5c4-7f5e-7b3c-9d2a-1c2b3d4e5f60")
	gotAt, gotID, err := httpx.DecodePageToken(httpx.EncodePageToken(at, id))
	if err != nil || !gotAt.Equal(at) || gotID != id {
		t.Fatalf("got (%v, %v, %v), want (%v, %v, nil)", gotAt, gotID, err, at, id)
	}
	for _, bad := range []string{"", "!!!", "bm8tc2VwYXJhdG9y", "eCB5"} {
		if _, _, err := httpx.DecodePageToken(bad); err == nil {
			t.Errorf("token %q: got nil, want an error", bad)
		}
	}
}
