package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestChangePassword: the current password is required; the change ends
// every other session but the caller's, and only the new password logs in.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, kept := s.user(t, "change@example.com", "old-password", "buyer")
	other := s.login(t, "change@example.com", "old-password")

	r := s.do(t, "POST", "/v1/password", kept.AccessToken, map[string]string{"current_password": "not-the-password", "new_password": "new-password"})
	if p := r.Want(t, http.StatusBadRequest).Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "current_password" {
		t.Errorf("got %+v for a wrong current password, want a current_password field error", p)
	}
	s.do(t, "POST", "/v1/password", "", map[string]string{"current_password": "old-password", "new_password": "new-password"}).Want(t, http.StatusUnauthorized)

	s.do(t, "POST", "/v1/password", kept.AccessToken, map[string]string{
		"current_password": "old-password", "new_password": "new-password", "refresh_token": kept.RefreshToken,
	}).Want(t, http.StatusNoContent)
	s.refresh(t, other.RefreshToken).Want(t, http.StatusUnauthorized)
	s.refresh(t, kept.RefreshToken).Want(t, http.StatusOK)
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": "change@example.com", "password": "old-password"}).Want(t, http.StatusUnauthorized)
	s.login(t, "change@example.com", "new-password")
}

// TestChangePasswordGuessesLockOut: a stolen access token is no way to
// guess the password: wrong current passwords count towards the lock-out.
func TestChangePasswordGuessesLockOut(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, tp := s.user(t, "guess@example.com", "real-password", "buyer")
	for range 5 {
		s.do(t, "POST", "/v1/password", tp.AccessToken, map[string]string{"current_password": "a-guess!", "new_password": "new-password"}).Want(t, http.StatusBadRequest)
	}
	r := s.do(t, "POST", "/v1/password", tp.AccessToken, map[string]string{"current_password": "real-password", "new_password": "new-password"})
	if r.Want(t, http.StatusTooManyRequests); r.Header.Get("Retry-After") == "" {
		t.Error("got 429 without Retry-After")
	}
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": "guess@example.com", "password": "real-password"}).Want(t, http.StatusTooManyRequests)
}

// TestPasswordReset: forgot → emailed link → reset. The reset ends every
// session, lifts a lock-out, verifies the address, and its token is single
// use; a reset token is not a verification token.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.signup(t, "forgetful@example.com", "old-password", "buyer") // never verified
	session := s.login(t, "forgetful@example.com", "old-password")
	for range 5 {
		s.do(t, "POST", "/v1/login", "", map[string]string{"email": "forgetful@example.com", "password": "wrong-guess"})
	}
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": "forgetful@example.com", "password": "old-password"}).Want(t, http.StatusTooManyRequests)

	s.do(t, "POST", "/v1/password/forgot", "", map[string]string{"email": "forgetful@example.com"}).Want(t, http.StatusAccepted)
	link := s.emailLink(t, "forgetful@example.com", "Reset your Mylittleshopping password")
	if !strings.HasPrefix(link, s.Env["AUTH_RESET_URL"]+"#token=") {
		t.Errorf("got reset link %q, want AUTH_RESET_URL with the token", link)
	}
	token := tokenOf(t, link)
	if p := s.do(t, "POST", "/v1/verify-email", "", map[string]string{"token": token}).Want(t, http.StatusBadRequest).Problem(t); !strings.Contains(p.Detail, "not valid") {
		t.Errorf("got %q for a reset token used to verify, want it refused as not valid", p.Detail)
	}

	s.do(t, "POST", "/v1/password/reset", "", map[string]string{"token": token, "new_password": "short"}).Want(t, http.StatusBadRequest)
	s.do(t, "POST", "/v1/password/reset", "", map[string]string{"token": token, "new_password": "brand-new-password"}).Want(t, http.StatusNoContent)
	p := s.do(t, "POST", "/v1/password/reset", "", map[string]string{"token": token, "new_password": "another-password"}).Want(t, http.StatusBadRequest).Problem(t)
	if !strings.Contains(p.Detail, "already used") {
		t.Errorf("got %q for a second reset with one token, want already used", p.Detail)
	}

	s.refresh(t, session.RefreshToken).Want(t, http.StatusUnauthorized)
	tp := s.login(t, "forgetful@example.com", "brand-new-password") // the lock-out is lifted
	if me := s.me(t, tp.AccessToken); me.VerifiedAt == nil {
		t.Error("the reset did not verify the address it was mailed to")
	}
	checkNoSecrets(t, s, map[string]string{"reset token": token, "new password": "brand-new-password"})
}

// TestEmailTokenErrors: unknown, used and expired tokens each get a 400
// that says which.
func TestEmailTokenErrors(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.signup(t, "slow@example.com", "password-slow", "buyer")
	token := tokenOf(t, s.emailLink(t, "slow@example.com", "Confirm your email address"))
	if _, err := s.DB.Exec(context.Background(), `UPDATE email_tokens SET expires_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, detail string
	}{
		{"unknown", "bm90LWEtdG9rZW4", "is not valid"},
		{"expired", token, "expired at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.do(t, "POST", "/v1/verify-email", "", map[string]string{"token": tt.token}).Want(t, http.StatusBadRequest).Problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != "token" || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got %+v, want a token field error saying %q", p, tt.detail)
			}
		})
	}
	// A resend gives a fresh, working link.
	s.do(t, "POST", "/v1/verify-email/resend", "", map[string]string{"email": "slow@example.com"}).Want(t, http.StatusAccepted)
	msgs := s.emails(t, "slow@example.com", "Confirm your email address", 2)
	s.follow(t, linkRE.FindString(msgs[1].Message.TextPart)).Want(t, http.StatusOK)
}
