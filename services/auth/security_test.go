package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// TestRefreshReuseRevokesFamily is acceptance 3: presenting a refresh token
// that was already rotated revokes the whole family, so both the replayed
// token and its successor are refused; another session of the same account
// is untouched.
func TestRefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.user(t, "reuse@example.com", "password-reuse", "buyer")
	first := s.login(t, "reuse@example.com", "password-reuse")
	otherSession := s.login(t, "reuse@example.com", "password-reuse")

	var second tokenPair
	s.refresh(t, first.RefreshToken).Want(t, http.StatusOK).Decode(t, &second)
	s.refresh(t, first.RefreshToken).Want(t, http.StatusUnauthorized).Problem(t) // the replay
	s.refresh(t, second.RefreshToken).Want(t, http.StatusUnauthorized).Problem(t)
	s.refresh(t, otherSession.RefreshToken).Want(t, http.StatusOK)
	if !strings.Contains(s.Logs.String(), "revoking its family") {
		t.Error("the replay was not logged as a warning")
	}
}

// TestTamperedTokenRefused checks end to end that the service verifies its
// own tokens: a token with a changed claim or signature gets 401
// problem+json (the full token suite is authn's).
func TestTamperedTokenRefused(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, tp := s.user(t, "tamper@example.com", "password-tamper", "buyer")
	parts := strings.Split(tp.AccessToken, ".")
	promoted := strings.Replace(string(mustB64(t, parts[1])), `"role":"buyer"`, `"role":"admin"`, 1)
	tests := map[string]string{
		"claims changed":    parts[0] + "." + b64(promoted) + "." + parts[2],
		"signature changed": parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"truncated":         parts[0] + "." + parts[1],
		"not a token":       "garbage",
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := s.do(t, "GET", "/v1/accounts", token, nil).Want(t, http.StatusUnauthorized)
			if p := r.Problem(t); !strings.HasSuffix(p.Type, "/unauthenticated") {
				t.Errorf("got problem type %q, want unauthenticated", p.Type)
			}
		})
	}
	s.me(t, tp.AccessToken) // the genuine token still works
}

// TestEnumeration is acceptance 5: whether an address has an account cannot
// be learnt from login, signup, resend or forgot-password answers.
func TestEnumeration(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.user(t, "known@example.com", "password-known", "buyer")
	s.signup(t, "unverified@example.com", "password-unverified", "seller")

	tests := []struct {
		name, path     string
		known, unknown any
	}{
		{"login", "/v1/login",
			map[string]string{"email": "known@example.com", "password": "wrong-password"},
			map[string]string{"email": "nobody@example.com", "password": "wrong-password"}},
		{"signup", "/v1/signup",
			map[string]string{"email": "known@example.com", "password": "another-password", "display_name": "Dup", "role": "buyer"},
			map[string]string{"email": "newcomer@example.com", "password": "another-password", "display_name": "New", "role": "buyer"}},
		{"resend", "/v1/verify-email/resend",
			map[string]string{"email": "unverified@example.com"},
			map[string]string{"email": "nobody@example.com"}},
		{"forgot", "/v1/password/forgot",
			map[string]string{"email": "known@example.com"},
			map[string]string{"email": "nobody@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := s.do(t, "POST", tt.path, "", tt.known)
			unknown := s.do(t, "POST", tt.path, "", tt.unknown)
			if known.Status != unknown.Status {
				t.Fatalf("got status %d for a known address and %d for an unknown one, want the same", known.Status, unknown.Status)
			}
			kb, ub := string(known.Body), string(unknown.Body)
			if known.Status >= 400 {
				kb, ub = withoutInstance(t, known), withoutInstance(t, unknown)
			}
			if kb != ub {
				t.Errorf("got body %s for a known address and %s for an unknown one, want the same", kb, ub)
			}
		})
	}
	// The known addresses did get their emails; the unknown one got none.
	s.emails(t, "known@example.com", "Someone tried to sign up with your address", 1)
	s.emails(t, "known@example.com", "Reset your Mylittleshopping password", 1)
	s.emails(t, "unverified@example.com", "Confirm your email address", 2)
	if got := s.mail.Sink.Messages(mailsink.Filter{To: "nobody@example.com"}); len(got) != 0 {
		t.Errorf("got %d emails to an unknown address, want none", len(got))
	}
}

// TestLockout: 5 failures within 15 minutes from one client lock that
// client out of the address, for known and unknown addresses alike; while locked, even the right password gets
// 429 with Retry-After; the next lock-out lasts twice as long; a success
// before the limit resets the count.
func TestLockout(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.user(t, "locked@example.com", "password-locked", "buyer")
	s.user(t, "reset@example.com", "password-reset", "buyer")
	// Each address is tried from a client of its own: this is the rule
	// per (address, client); abuse_test.go has the others.
	login := func(email, password string) response {
		return s.doFrom(t, "client of "+email, "POST", "/v1/login", "", map[string]string{"email": email, "password": password})
	}
	failFive := func(email string) {
		t.Helper()
		for i := range 5 {
			if r := login(email, "wrong-password"); r.Status != http.StatusUnauthorized {
				t.Fatalf("failure %d for %s: got %d, want 401 (%s)", i+1, email, r.Status, r.Body)
			}
		}
	}
	retryAfter := func(r response) int {
		t.Helper()
		n, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil {
			t.Fatalf("got Retry-After %q, want seconds", r.Header.Get("Retry-After"))
		}
		return n
	}

	failFive("locked@example.com")
	known := login("locked@example.com", "password-locked").Want(t, http.StatusTooManyRequests)
	if n := retryAfter(known); n < 55 || n > 60 {
		t.Errorf("got Retry-After %d on the first lock-out, want about 60", n)
	}
	failFive("ghost@example.com")
	unknown := login("ghost@example.com", "whatever-password").Want(t, http.StatusTooManyRequests)
	if withoutInstance(t, known) != withoutInstance(t, unknown) {
		t.Errorf("got lock-out %s for a known address and %s for an unknown one, want the same", known.Body, unknown.Body)
	}

	// The lock ends; five more failures lock for twice as long.
	if _, err := s.DB.Exec(context.Background(), `UPDATE login_throttle SET locked_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	failFive("locked@example.com")
	if n := retryAfter(login("locked@example.com", "password-locked").Want(t, http.StatusTooManyRequests)); n < 115 || n > 120 {
		t.Errorf("got Retry-After %d on the second lock-out, want about 120", n)
	}

	// A success resets the client's count: 4 + success + 4 failures is no
	// lock-out.
	for range 4 {
		login("reset@example.com", "wrong-password").Want(t, http.StatusUnauthorized)
	}
	login("reset@example.com", "password-reset").Want(t, http.StatusOK)
	for range 4 {
		login("reset@example.com", "wrong-password").Want(t, http.StatusUnauthorized)
	}
	login("reset@example.com", "password-reset").Want(t, http.StatusOK)
}

// TestMailOutage is acceptance 7: while the mail sink (Mailjet) refuses
// sends, signup still succeeds, and the verification email arrives, once,
// when it recovers.
func TestMailOutage(t *testing.T) {
	t.Parallel()
	s := startService(t)
	r := s.do(t, "POST", s.mail.URL+"/control/fail", "", `{"count": 3, "status": 503}`)
	if r.Status != http.StatusNoContent {
		t.Fatalf("POST /control/fail: got %d %s, want 204", r.Status, r.Body)
	}
	s.signup(t, "patient@example.com", "password-patient", "buyer")
	link := s.emailLink(t, "patient@example.com", "Confirm your email address")
	s.follow(t, link).Want(t, http.StatusOK)
	var attempts int
	if err := s.DB.QueryRow(context.Background(), `SELECT attempts FROM outbox_messages WHERE sent_at IS NOT NULL`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 4 {
		t.Errorf("got %d attempts, want 4 (3 refused, then sent)", attempts)
	}
	if got := s.mail.Sink.Messages(mailsink.Filter{To: "patient@example.com"}); len(got) != 1 {
		t.Errorf("got %d emails, want 1", len(got))
	}
}

var b64Enc = base64.RawURLEncoding

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	raw, err := b64Enc.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func b64(s string) string { return b64Enc.EncodeToString([]byte(s)) }

// flip changes the first character of s to another base64url character.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
