package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestAuthorizationMatrix is acceptance 4: every account endpoint, asked by
// anonymous, the owner of the target account (buyer A), another buyer (B),
// a seller and an admin. Another user's account is 404 (as if it did not
// exist), admin-only actions are 403 for others, anonymous is 401.
//
// Rows that destroy or disable their target ("fresh") get a new buyer
// account of their own as target and owner, so the rows can run in
// parallel without changing each other's world.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, tokA := s.user(t, "a@example.com", "password-of-a", "buyer")
	accA := s.me(t, tokA.AccessToken)
	_, tokB := s.user(t, "b@example.com", "password-of-b", "buyer")
	_, tokS := s.user(t, "s@example.com", "password-of-s", "seller")
	tokAdmin := s.login(t, adminEmail, adminPassword)

	const (
		anonymous = "anonymous"
		owner     = "owner (buyer A)"
		other     = "other buyer"
		seller    = "seller"
		admin     = "admin"
	)
	actors := []string{anonymous, owner, other, seller, admin}
	type statuses map[string]int
	all := func(code int) statuses {
		return statuses{anonymous: 401, owner: code, other: code, seller: code, admin: code}
	}
	missing := uuid.NewString()
	tests := []struct {
		method, path string // {id} is the target account
		body         string
		fresh        bool
		want         statuses
	}{
		{"GET", "/v1/accounts/me", "", false, all(200)},
		{"PATCH", "/v1/accounts/me", `{"display_name":"New Name"}`, false, all(200)},
		{"PATCH", "/v1/accounts/me", `{"role":"admin"}`, false, statuses{anonymous: 401, owner: 403, other: 403, seller: 403, admin: 200}},
		{"PATCH", "/v1/accounts/me", `{"disabled":false}`, false, statuses{anonymous: 401, owner: 403, other: 403, seller: 403, admin: 200}},
		{"DELETE", "/v1/accounts/me", "", true, statuses{anonymous: 401, owner: 204}},
		{"GET", "/v1/accounts", "", false, statuses{anonymous: 401, owner: 403, other: 403, seller: 403, admin: 200}},
		{"GET", "/v1/accounts?role=seller&limit=5", "", false, statuses{anonymous: 401, owner: 403, other: 403, seller: 403, admin: 200}},
		{"GET", "/v1/accounts/{id}", "", false, statuses{anonymous: 401, owner: 200, other: 404, seller: 404, admin: 200}},
		{"PATCH", "/v1/accounts/{id}", `{"display_name":"Renamed"}`, false, statuses{anonymous: 401, owner: 200, other: 404, seller: 404, admin: 200}},
		{"PATCH", "/v1/accounts/{id}", `{"role":"seller"}`, true, statuses{anonymous: 401, owner: 403, other: 404, seller: 404, admin: 200}},
		{"PATCH", "/v1/accounts/{id}", `{"disabled":true}`, true, statuses{anonymous: 401, owner: 403, other: 404, seller: 404, admin: 200}},
		{"DELETE", "/v1/accounts/{id}", "", true, statuses{anonymous: 401, owner: 204, other: 404, seller: 404}},
		{"DELETE", "/v1/accounts/{id}", "", true, statuses{admin: 204}},
		{"GET", "/v1/accounts/" + missing, "", false, all(404)},
		{"PATCH", "/v1/accounts/" + missing, `{"display_name":"Nobody"}`, false, all(404)},
		{"DELETE", "/v1/accounts/" + missing, "", false, all(404)},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s %s %s", i, tt.method, tt.path, tt.body), func(t *testing.T) {
			t.Parallel()
			target, tokens := accA.ID, map[string]string{owner: tokA.AccessToken, other: tokB.AccessToken, seller: tokS.AccessToken, admin: tokAdmin.AccessToken}
			if tt.fresh {
				email := fmt.Sprintf("fresh-%d@example.com", i)
				acc, tp := s.user(t, email, "password-of-fresh", "buyer")
				target, tokens[owner] = acc.ID, tp.AccessToken
			}
			path := strings.ReplaceAll(tt.path, "{id}", target)
			// Destructive rows list only the actors they are about, the
			// one that succeeds last.
			for _, actor := range actors {
				want, ok := tt.want[actor]
				if !ok {
					continue
				}
				var body any
				if tt.body != "" {
					body = tt.body
				}
				r := s.do(t, tt.method, path, tokens[actor], body)
				if r.Status != want {
					t.Errorf("%s: got %d, want %d (%s)", actor, r.Status, want, r.Body)
					continue
				}
				if r.Status >= 400 {
					r.Problem(t)
				}
			}
		})
	}
}
