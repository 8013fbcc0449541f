package main

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// TestAuthRefusesBadInput is issue 12's input cases at auth's boundary:
// impossible page tokens (case 8), text that is not text and required
// fields (cases 1 and 6), errors in plain words (case 11). Each is a 400
// naming the field.
func TestAuthRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := startService(t)
	admin := s.login(t, adminEmail, adminPassword)
	forged := func(at time.Time) string { return url.QueryEscape(httpx.EncodePageToken(at, uuid.New())) }
	tests := []struct {
		name, method, path string
		body               any
		status             int
		field, detail      string
	}{
		{"accounts, token at −1 µs", "GET", "/v1/accounts?page_token=" + forged(time.UnixMicro(-1)), nil, 400, "page_token", ""},
		{"accounts, token in year 1", "GET", "/v1/accounts?page_token=" + forged(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), nil, 400, "page_token", ""},
		{"NUL in a filter", "GET", "/v1/accounts?role=buyer%00", nil, 400, "role", ""},
		{"NUL in a path", "GET", "/v1/accounts/%00", nil, 400, "id", ""},
		{"NUL in a password", "POST", "/v1/login", `{"email":"ada@example.com","password":"secret\u0000"}`, 400, "password", ""},
		{"invalid UTF-8 in a display name", "POST", "/v1/signup", "{\"email\":\"ada@example.com\",\"password\":\"password-ok\",\"display_name\":\"Ad\xe1\",\"role\":\"buyer\"}", 400, "display_name", ""},
		{"login without password", "POST", "/v1/login", `{"email":"ada@example.com"}`, 400, "password", ""},
		{"login with a null email", "POST", "/v1/login", `{"email":null,"password":"secret-1"}`, 400, "email", ""},
		{"malformed account id", "GET", "/v1/accounts/42", nil, 400, "id", "id: must be a UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.do(t, tt.method, tt.path, admin.AccessToken, tt.body).Want(t, tt.status)
			p := r.Problem(t)
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, []string{tt.field}) {
				t.Errorf("got fields %q, want [%s] (detail %q)", got, tt.field, p.Detail)
			}
			if !strings.HasPrefix(p.Detail, tt.detail) {
				t.Errorf("got detail %q, want it to start with %q", p.Detail, tt.detail)
			}
			if strings.Contains(p.Detail, "uuid.UUID") || strings.Contains(p.Detail, "unmarshal") {
				t.Errorf("detail %q exposes Go's words", p.Detail)
			}
		})
	}
}
