package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// The shapes oapi-codegen generates: required properties without
// omitempty, optional ones as pointers with omitempty.
type (
	orderLine struct {
		ProductID uuid.UUID `json:"product_id"`
		Quantity  int       `json:"quantity"`
		Note      *string   `json:"note,omitempty"`
	}
	shipTo struct {
		Name  string  `json:"name"`
		Line2 *string `json:"line2,omitempty"`
	}
	order struct {
		Lines    []orderLine       `json:"lines"`
		Ship     shipTo            `json:"ship"`
		Gift     *shipTo           `json:"gift,omitempty"`
		Labels   map[string]string `json:"labels,omitempty"`
		Deadline *time.Time        `json:"deadline,omitempty"`
		// A required nullable property: present, null allowed.
		Coupon *string `json:"coupon"`
	}
)

func TestDecodeJSONRequiredAndText(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]httpx.HandlerFunc{"/orders": func(w http.ResponseWriter, r *http.Request) error {
		var o order
		if err := httpx.DecodeJSON(w, r, &o); err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, o)
	}})
	line := `{"product_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","quantity":2}`
	tests := []struct {
		name   string
		body   string
		fields []string // the fields the 400 names; nil: 200
	}{
		{"complete", `{"lines":[` + line + `],"ship":{"name":"Ada"},"coupon":null}`, nil},
		{"optional members given", `{"lines":[` + line + `],"ship":{"name":"Ada","line2":"b"},"gift":{"name":"Bob"},"labels":{"a":"b"},"coupon":"X"}`, nil},
		{"empty object", `{}`, []string{"coupon", "lines", "ship"}},
		{"null required", `{"lines":null,"ship":null,"coupon":null}`, []string{"lines", "ship"}},
		{"missing in a nested object", `{"lines":[` + line + `],"ship":{},"coupon":null}`, []string{"ship.name"}},
		{"missing in an optional nested object", `{"lines":[` + line + `],"ship":{"name":"a"},"gift":{"line2":"x"},"coupon":null}`, []string{"gift.name"}},
		{"missing in array elements", `{"lines":[` + line + `,{"quantity":1},{"product_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","quantity":null}],"ship":{"name":"a"},"coupon":null}`, []string{"lines[1].product_id", "lines[2].quantity"}},
		{"member in another case", `{"LINES":[` + line + `],"Ship":{"NAME":"a"},"coupon":null}`, nil},
		{"NUL in a string", `{"lines":[` + line + `],"ship":{"name":"a\u0000b"},"coupon":null}`, []string{"ship.name"}},
		{"NUL in a map value", `{"lines":[` + line + `],"ship":{"name":"a"},"labels":{"k":"\u0000"},"coupon":null}`, []string{"labels.k"}},
		{"NUL in a map key", `{"lines":[` + line + `],"ship":{"name":"a"},"labels":{"\u0000":"v"},"coupon":null}`, []string{"labels"}},
		{"invalid UTF-8", "{\"lines\":[" + line + "],\"ship\":{\"name\":\"a\xff\xfe\"},\"coupon\":null}", []string{"ship.name"}},
		{"invalid UTF-8 in an array", "{\"lines\":[" + line + "," + strings.Replace(line, "}", ",\"note\":\"\xc3\"}", 1) + "],\"ship\":{\"name\":\"a\"},\"coupon\":null}", []string{"lines[1].note"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.fields == nil {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("got status %d, want 200", resp.StatusCode)
				}
				return
			}
			p := checkProblem(t, resp, http.StatusBadRequest, "invalid-request")
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Field)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.fields) {
				t.Errorf("got fields %v, want %v (%+v)", got, tt.fields, p.Errors)
			}
		})
	}
}

// InvalidParamFormatError mimics oapi-codegen's InvalidParamFormatError, which wraps the
// binder's error.
type InvalidParamFormatError struct {
	ParamName string
	Err       error
}

func (e *InvalidParamFormatError) Error() string {
	return "Invalid format for parameter " + e.ParamName + ": " + e.Err.Error()
}

func (e *InvalidParamFormatError) Unwrap() error { return e.Err }

func TestTextParamsAndParamWords(t *testing.T) {
	t.Parallel()
	r := httpx.NewRouter()
	r.Handle("/things/{name}", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		if v := q.Get("id"); v != "" {
			if _, err := uuid.Parse(v); err != nil {
				httpx.ParamError(w, r, &InvalidParamFormatError{ParamName: "id", Err: fmt.Errorf("error unmarshaling '%s' text as *uuid.UUID: %w", v, err)})
				return nil
			}
		}
		if v := q.Get("at"); v != "" {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				httpx.ParamError(w, r, &InvalidParamFormatError{ParamName: "at", Err: fmt.Errorf("error parsing '%s' as RFC3339 or 2006-01-02 time: %w", v, err)})
				return nil
			}
		}
		if v := q.Get("limit"); v != "" {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				httpx.ParamError(w, r, &InvalidParamFormatError{ParamName: "limit", Err: fmt.Errorf("error binding string parameter: %w", err)})
				return nil
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})).Methods(http.MethodGet)
	srv := httptest.NewServer(httpx.Middleware(logging.ForTest(t), r))
	t.Cleanup(srv.Close)
	tests := []struct {
		path   string
		status int
		detail string
	}{
		{"/things/mug?q=cup", 204, ""},
		{"/things/mug?q=%00", 400, "q: must not contain NUL characters"},
		{"/things/mug?q=%ff%fe", 400, "q: must be valid UTF-8 text"},
		{"/things/m%00g", 400, "name: must not contain NUL characters"},
		{"/things/m%ffg", 400, "name: must be valid UTF-8 text"},
		{"/things/mug?%00=x", 400, "query: has a parameter name that must not contain NUL"},
		{"/things/mug?q=%zz", 400, "query: must be a query string"},
		{"/things/mug?id=123", 400, "id: must be a UUID like"},
		{"/things/mug?at=yesterday", 400, "at: must be an RFC 3339 date-time"},
		{"/things/mug?limit=99999999999999999999", 400, "limit: is out of range"},
		{"/things/mug?limit=ten", 400, "limit: must be an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.status == 204 {
				if resp.StatusCode != 204 {
					t.Fatalf("got status %d, want 204", resp.StatusCode)
				}
				return
			}
			p := checkProblem(t, resp, tt.status, "invalid-request")
			if !strings.HasPrefix(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to start with %q", p.Detail, tt.detail)
			}
			for _, internal := range []string{"uuid.UUID", "unmarshaling", "ParseInt", "RFC3339 or", "binding"} {
				if strings.Contains(p.Detail, internal) {
					t.Errorf("detail %q exposes the binder's words %q", p.Detail, internal)
				}
			}
		})
	}
}

func TestPageTokenTimeRange(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	for _, at := range []time.Time{
		time.Unix(0, -1000).UTC(), // −1 µs
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		if _, _, err := httpx.DecodePageToken(httpx.EncodePageToken(at, id)); err == nil {
			t.Errorf("token at %v: got nil, want an error", at)
		}
	}
	if _, _, err := httpx.DecodePageToken(httpx.EncodePageToken(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), id)); err != nil {
		t.Errorf("token at 2000-01-01: got %v, want nil", err)
	}
}
