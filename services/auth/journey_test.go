package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/auth/internal/accounts"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// TestJourney is acceptance 1 and 6: signup → one verification email with a
// working link → verify → login → a protected endpoint → refresh → logout
// → the refresh token no longer works; then the stored hash carries
// argon2id parameters at or above the minimum, and neither the log output
// nor any column of any table holds the password or a token.
func TestJourney(t *testing.T) {
	t.Parallel()
	s := startService(t)
	const email, password = "ada@example.com", "correct horse battery"
	secrets := map[string]string{"password": password}

	// The address is stored as typed, but lowercased.
	s.signup(t, " Ada@Example.com", password, "buyer")
	link := s.emailLink(t, email, "Confirm your email address")
	if want := s.URL + "/v1/verify-email#token="; !strings.HasPrefix(link, want) {
		t.Fatalf("got link %q, want it to start with %q", link, want)
	}
	secrets["verification token"] = tokenOf(t, link)

	var verified account
	s.follow(t, link).Want(t, http.StatusOK).Decode(t, &verified)
	if verified.Email != email || verified.VerifiedAt == nil || verified.Role != "buyer" {
		t.Fatalf("got account %+v after following the link, want %s verified buyer", verified, email)
	}
	if p := s.follow(t, link).Want(t, http.StatusBadRequest).Problem(t); !strings.Contains(p.Detail, "already used") {
		t.Errorf("got detail %q for a second use of the link, want it to say already used", p.Detail)
	}

	tp := s.login(t, email, password)
	secrets["access token"], secrets["refresh token"] = tp.AccessToken, tp.RefreshToken
	if tp.TokenType != "Bearer" || tp.ExpiresIn != 900 {
		t.Errorf("got token_type %q expires_in %d, want Bearer 900", tp.TokenType, tp.ExpiresIn)
	}
	claims := jwtPart(t, tp.AccessToken, 1)
	header := jwtPart(t, tp.AccessToken, 0)
	if claims["sub"] != verified.ID || claims["role"] != "buyer" || claims["email"] != email || claims["email_verified"] != true ||
		claims["iss"] != "mylittleshopping-auth" || header["alg"] != "EdDSA" || header["kid"] == nil {
		t.Errorf("got header %v claims %v, want EdDSA with kid, sub %s, role buyer, verified, our issuer", header, claims, verified.ID)
	}
	if me := s.me(t, tp.AccessToken); me.ID != verified.ID {
		t.Fatalf("got /v1/accounts/me %s, want %s", me.ID, verified.ID)
	}

	var next tokenPair
	s.refresh(t, tp.RefreshToken).Want(t, http.StatusOK).Decode(t, &next)
	secrets["refreshed access token"], secrets["rotated refresh token"] = next.AccessToken, next.RefreshToken
	if next.RefreshToken == tp.RefreshToken {
		t.Fatal("refresh returned the same refresh token, want a rotated one")
	}
	s.me(t, next.AccessToken)

	s.do(t, "POST", "/v1/logout", "", map[string]string{"refresh_token": next.RefreshToken}).Want(t, http.StatusNoContent)
	if p := s.refresh(t, next.RefreshToken).Want(t, http.StatusUnauthorized).Problem(t); !strings.Contains(p.Detail, "log in again") {
		t.Errorf("got detail %q after logout, want a refusal", p.Detail)
	}

	if got := s.mail.Sink.Messages(mailsink.Filter{To: email}); len(got) != 1 {
		t.Errorf("got %d emails to %s, want exactly the verification email", len(got), email)
	}

	var hash string
	if err := s.DB.QueryRow(context.Background(), `SELECT password_hash FROM accounts WHERE email = $1`, email).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	params, _, _, err := accounts.ParseHash(hash)
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$") {
		t.Fatalf("stored hash %q is not an argon2id PHC string: %v", hash, err)
	}
	if params.Memory < 19456 || params.Iterations < 2 || params.Parallelism < 1 {
		t.Errorf("got argon2id m=%d,t=%d,p=%d, want at least m=19456,t=2,p=1", params.Memory, params.Iterations, params.Parallelism)
	}

	checkNoSecrets(t, s, secrets)
	// The scans can fail: they do find what is meant to be stored and logged.
	if !strings.Contains(s.Logs.String(), verified.ID) || !strings.Contains(s.Logs.String(), `"path":"/v1/login"`) {
		t.Error("the log scan missed the account id and the login request: it scans nothing")
	}
	if found := findInDatabase(t, s.DB, email); len(found) == 0 {
		t.Error("the database scan did not find the stored email address: it scans nothing")
	}
}

// checkNoSecrets fails if the service's log output or any column of its
// database contains one of the secrets (named by their keys).
func checkNoSecrets(t *testing.T, s *service, secrets map[string]string) {
	t.Helper()
	logs := s.Logs.String()
	for name, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the log output contains the %s", name)
		}
		if found := findInDatabase(t, s.DB, secret); len(found) > 0 {
			t.Errorf("the database holds the %s in %v", name, found)
		}
	}
}

// findInDatabase returns the table.column of every column of the public
// schema, of whatever type, that holds needle in any row.
func findInDatabase(t *testing.T, db *pgxpool.Pool, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.table, &c.name, &c.typ)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 20 {
		t.Fatalf("found %d columns, want every column of the auth and outbox tables", len(cols))
	}
	var found []string
	for _, c := range cols {
		table, col := pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.name}.Sanitize()
		cond := fmt.Sprintf("strpos(%s::text, $1) > 0", col)
		if c.typ == "bytea" {
			cond = fmt.Sprintf("position(convert_to($1, 'UTF8') in %s) > 0", col)
		}
		var n int
		if err := db.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", table, cond), needle).Scan(&n); err != nil {
			t.Fatalf("scan %s.%s: %v", c.table, c.name, err)
		}
		if n > 0 {
			found = append(found, c.table+"."+c.name)
		}
	}
	return found
}

// jwtPart decodes part i (0 header, 1 claims) of a JWT without verifying it.
func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
