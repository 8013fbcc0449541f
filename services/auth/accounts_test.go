package main

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestValidation: every field is checked at the boundary, all faults are
// reported at once, each naming its field.
func TestValidation(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, tp := s.user(t, "valid@example.com", "password-valid", "buyer")
	long := strings.Repeat("x", 129)
	signup := func(email, password, name, role string) string {
		return fmt.Sprintf(`{"email":%q,"password":%q,"display_name":%q,"role":%q}`, email, password, name, role)
	}
	tests := []struct {
		name, method, path, body string
		auth                     bool
		status                   int
		fields                   []string // the fields named in errors
	}{
		{"signup bad email", "POST", "/v1/signup", signup("not-an-email", "password-ok", "Ada", "buyer"), false, 400, []string{"email"}},
		{"signup email without domain dot", "POST", "/v1/signup", signup("ada@localhost", "password-ok", "Ada", "buyer"), false, 400, []string{"email"}},
		{"signup short password", "POST", "/v1/signup", signup("ada@example.com", "7chars!", "Ada", "buyer"), false, 400, []string{"password"}},
		{"signup long password", "POST", "/v1/signup", signup("ada@example.com", long, "Ada", "buyer"), false, 400, []string{"password"}},
		{"signup empty display name", "POST", "/v1/signup", signup("ada@example.com", "password-ok", "   ", "buyer"), false, 400, []string{"display_name"}},
		{"signup long display name", "POST", "/v1/signup", signup("ada@example.com", "password-ok", strings.Repeat("n", 101), "buyer"), false, 400, []string{"display_name"}},
		{"signup as admin", "POST", "/v1/signup", signup("ada@example.com", "password-ok", "Ada", "admin"), false, 400, []string{"role"}},
		{"signup everything wrong", "POST", "/v1/signup", signup("", "", "", ""), false, 400, []string{"display_name", "email", "password", "role"}},
		{"signup unknown field", "POST", "/v1/signup", `{"email":"ada@example.com","is_admin":true}`, false, 400, []string{"is_admin"}},
		{"signup not JSON", "POST", "/v1/signup", `email=ada`, false, 400, nil},
		{"login without password", "POST", "/v1/login", `{"email":"valid@example.com"}`, false, 400, []string{"password"}},
		{"login long password", "POST", "/v1/login", fmt.Sprintf(`{"email":"valid@example.com","password":%q}`, long), false, 400, []string{"password"}},
		{"refresh without token", "POST", "/v1/token/refresh", `{}`, false, 400, []string{"refresh_token"}},
		{"logout without token", "POST", "/v1/logout", `{"refresh_token":""}`, false, 400, []string{"refresh_token"}},
		{"verify without token", "POST", "/v1/verify-email", `{}`, false, 400, []string{"token"}},
		{"resend bad email", "POST", "/v1/verify-email/resend", `{"email":"nope"}`, false, 400, []string{"email"}},
		{"forgot bad email", "POST", "/v1/password/forgot", `{"email":""}`, false, 400, []string{"email"}},
		{"reset without anything", "POST", "/v1/password/reset", `{}`, false, 400, []string{"new_password", "token"}},
		{"change short new password", "POST", "/v1/password", `{"current_password":"password-valid","new_password":"short"}`, true, 400, []string{"new_password"}},
		{"patch nothing", "PATCH", "/v1/accounts/me", `{}`, true, 400, nil},
		{"patch bad role", "PATCH", "/v1/accounts/me", `{"role":"king"}`, true, 400, []string{"role"}},
		{"patch control characters", "PATCH", "/v1/accounts/me", `{"display_name":"a\u0007b"}`, true, 400, []string{"display_name"}},
		{"patch email", "PATCH", "/v1/accounts/me", `{"email":"other@example.com"}`, true, 400, []string{"email"}},
		{"id not a uuid", "GET", "/v1/accounts/42", "", true, 400, []string{"id"}},
		{"internal id not a uuid", "GET", "/internal/accounts/42", "", false, 400, []string{"id"}},
		{"list limit 0", "GET", "/v1/accounts?limit=0", "", true, 400, []string{"limit"}},
		{"list limit 101", "GET", "/v1/accounts?limit=101", "", true, 400, []string{"limit"}},
		{"list limit not a number", "GET", "/v1/accounts?limit=ten", "", true, 400, []string{"limit"}},
		{"list bad role", "GET", "/v1/accounts?role=king", "", true, 400, []string{"role"}},
		{"list bad page token", "GET", "/v1/accounts?page_token=zzz", "", true, 400, []string{"page_token"}},
		{"unknown route", "GET", "/v1/nothing", "", false, 404, nil},
		{"wrong method", "PUT", "/v1/login", "", false, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body any
			if tt.body != "" {
				body = tt.body
			}
			token := ""
			if tt.auth {
				token = tp.AccessToken
			}
			r := s.do(t, tt.method, tt.path, token, body)
			if r.Status != tt.status {
				t.Fatalf("got %d, want %d (%s)", r.Status, tt.status, r.Body)
			}
			p := r.Problem(t)
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
				if e.Detail == "" {
					t.Errorf("field %s has no detail", e.Field)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields in error (-want +got):\n%s\n%s", diff, r.Body)
			}
		})
	}
	r := s.do(t, "POST", "/v1/signup", "", nil)
	if r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("got %d for a signup without a body or content type, want 415", r.Status)
	}
}

// TestListAccounts: admins page through accounts oldest first with a
// keyset token, optionally by role.
func TestListAccounts(t *testing.T) {
	t.Parallel()
	s := startService(t)
	for i := range 5 {
		role := "buyer"
		if i%2 == 1 {
			role = "seller"
		}
		s.signup(t, fmt.Sprintf("list-%d@example.com", i), "password-list", role)
	}
	admin := s.login(t, adminEmail, adminPassword)
	type page struct {
		Items         []account `json:"items"`
		NextPageToken *string   `json:"next_page_token"`
	}
	collect := func(query url.Values) (emails []string, pages int) {
		for {
			var p page
			s.do(t, "GET", "/v1/accounts?"+query.Encode(), admin.AccessToken, nil).Want(t, http.StatusOK).Decode(t, &p)
			pages++
			for _, a := range p.Items {
				emails = append(emails, a.Email)
			}
			if p.NextPageToken == nil {
				return emails, pages
			}
			query.Set("page_token", *p.NextPageToken)
		}
	}
	tests := []struct {
		query     url.Values
		want      []string
		wantPages int
	}{
		{url.Values{"limit": {"2"}}, []string{adminEmail, "list-0@example.com", "list-1@example.com", "list-2@example.com", "list-3@example.com", "list-4@example.com"}, 3},
		{url.Values{"limit": {"2"}, "role": {"seller"}}, []string{"list-1@example.com", "list-3@example.com"}, 1},
		{url.Values{"role": {"buyer"}}, []string{"list-0@example.com", "list-2@example.com", "list-4@example.com"}, 1},
		{url.Values{}, []string{adminEmail, "list-0@example.com", "list-1@example.com", "list-2@example.com", "list-3@example.com", "list-4@example.com"}, 1},
	}
	for _, tt := range tests {
		got, pages := collect(tt.query)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET /v1/accounts?%s (-want +got):\n%s", tt.query.Encode(), diff)
		}
		if pages != tt.wantPages {
			t.Errorf("GET /v1/accounts?%s: got %d pages, want %d", tt.query.Encode(), pages, tt.wantPages)
		}
	}
}

// TestDisabledAndDeletedAccounts: a disabled account can neither log in
// nor refresh until re-enabled; a deleted one can neither log in nor
// refresh, and its address may sign up again.
func TestDisabledAndDeletedAccounts(t *testing.T) {
	t.Parallel()
	s := startService(t)
	admin := s.login(t, adminEmail, adminPassword)
	acc, tp := s.user(t, "disabled@example.com", "password-disabled", "seller")

	var patched account
	s.do(t, "PATCH", "/v1/accounts/"+acc.ID, admin.AccessToken, map[string]any{"disabled": true}).Want(t, http.StatusOK).Decode(t, &patched)
	if patched.DisabledAt == nil {
		t.Fatalf("got %+v, want disabled_at set", patched)
	}
	s.refresh(t, tp.RefreshToken).Want(t, http.StatusUnauthorized)
	p := s.do(t, "POST", "/v1/login", "", map[string]string{"email": "disabled@example.com", "password": "password-disabled"}).Want(t, http.StatusForbidden).Problem(t)
	if !strings.HasSuffix(p.Type, "/account-disabled") {
		t.Errorf("got type %q, want account-disabled", p.Type)
	}
	// A wrong password learns nothing about the account's state.
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": "disabled@example.com", "password": "wrong-password"}).Want(t, http.StatusUnauthorized)
	s.do(t, "PATCH", "/v1/accounts/"+acc.ID, admin.AccessToken, map[string]any{"disabled": false}).Want(t, http.StatusOK)
	tp = s.login(t, "disabled@example.com", "password-disabled")

	s.do(t, "DELETE", "/v1/accounts/me", tp.AccessToken, nil).Want(t, http.StatusNoContent)
	s.refresh(t, tp.RefreshToken).Want(t, http.StatusUnauthorized)
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": "disabled@example.com", "password": "password-disabled"}).Want(t, http.StatusUnauthorized)
	s.do(t, "GET", "/v1/accounts/"+acc.ID, admin.AccessToken, nil).Want(t, http.StatusNotFound)

	again, _ := s.user(t, "disabled@example.com", "a-new-password", "buyer")
	if again.ID == acc.ID || again.Role != "buyer" {
		t.Errorf("got %+v after signing up again, want a new buyer account", again)
	}
}

// TestRoleChangeReachesTokens: a role changed by an admin is in the next
// access token, obtained by refresh.
func TestRoleChangeReachesTokens(t *testing.T) {
	t.Parallel()
	s := startService(t)
	admin := s.login(t, adminEmail, adminPassword)
	acc, tp := s.user(t, "promoted@example.com", "password-promoted", "buyer")
	s.do(t, "PATCH", "/v1/accounts/"+acc.ID, admin.AccessToken, map[string]string{"role": "seller"}).Want(t, http.StatusOK)
	var next tokenPair
	s.refresh(t, tp.RefreshToken).Want(t, http.StatusOK).Decode(t, &next)
	if role := jwtPart(t, next.AccessToken, 1)["role"]; role != "seller" {
		t.Errorf("got role %v in the refreshed token, want seller", role)
	}
}

// TestInternalAccount: another service reads an account's address, role
// and verification — nothing else — without a user token; disabled
// accounts are read too; a missing or deleted account is 404.
func TestInternalAccount(t *testing.T) {
	t.Parallel()
	s := startService(t)
	admin := s.login(t, adminEmail, adminPassword)
	seller, sellerTokens := s.user(t, "internal-seller@example.com", "password-seller", "seller")
	s.signup(t, "Internal-Unverified@Example.com", "password-unverified", "buyer")
	unverified := s.me(t, s.login(t, "internal-unverified@example.com", "password-unverified").AccessToken)
	adminAcc := s.me(t, admin.AccessToken)
	internal := func(id, token string) response {
		return s.do(t, "GET", "/internal/accounts/"+id, token, nil)
	}
	type summary struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		Role     string `json:"role"`
		Verified bool   `json:"verified"`
	}
	tests := []struct {
		name  string
		id    string
		token string
		want  summary
	}{
		{"verified seller", seller.ID, "", summary{seller.ID, "internal-seller@example.com", "seller", true}},
		{"unverified buyer", unverified.ID, "", summary{unverified.ID, "internal-unverified@example.com", "buyer", false}},
		{"admin", adminAcc.ID, "", summary{adminAcc.ID, adminEmail, "admin", true}},
		{"with a user's token", seller.ID, sellerTokens.AccessToken, summary{seller.ID, "internal-seller@example.com", "seller", true}},
	}
	for _, tt := range tests {
		r := internal(tt.id, tt.token).Want(t, http.StatusOK)
		var fields map[string]any
		r.Decode(t, &fields)
		if len(fields) != 4 {
			t.Errorf("%s: got fields %v, want id, email, role and verified only", tt.name, fields)
		}
		var got summary
		r.Decode(t, &got)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	// Disabled: still read (orders must still reach the seller of an
	// order placed before).
	s.do(t, "PATCH", "/v1/accounts/"+seller.ID, admin.AccessToken, map[string]any{"disabled": true}).Want(t, http.StatusOK)
	internal(seller.ID, "").Want(t, http.StatusOK)

	// Deleted, or never created: 404.
	s.do(t, "DELETE", "/v1/accounts/"+unverified.ID, admin.AccessToken, nil).Want(t, http.StatusNoContent)
	for _, id := range []string{unverified.ID, "0190a5c4-7f5e-7b3c-9d2a-1c2b3d4e5f60"} {
		if p := internal(id, "").Want(t, http.StatusNotFound).Problem(t); !strings.HasSuffix(p.Type, "/not-found") {
			t.Errorf("%s: got type %q, want not-found", id, p.Type)
		}
	}
}
