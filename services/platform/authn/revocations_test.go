package authn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// revocationServer answers GET /internal/revocations as auth does, with a
// list the test sets, and can be taken down.
type revocationServer struct {
	*httptest.Server
	mu    sync.Mutex
	list  []authn.Revocation
	polls atomic.Int64
	down  atomic.Bool
}

func newRevocations(t *testing.T) *revocationServer {
	s := &revocationServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.polls.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = httpx.WriteJSON(w, http.StatusOK, authn.RevocationList{Revocations: s.list, NextSince: time.Now()})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *revocationServer) add(r authn.Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, r)
}

// TestRevocations: a verifier that runs refuses a revoked session's tokens
// and an account's tokens issued before its cut-off, within a poll, and
// accepts a token of the account issued after it. When auth is down it
// keeps what it learnt and still accepts the other tokens.
func TestRevocations(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	jwks := newJWKS(t, key)
	revs := newRevocations(t)
	cfg := config(jwks.URL)
	cfg.RevocationsURL = revs.URL + "/internal/revocations"
	cfg.RevocationsInterval = 20 * time.Millisecond
	cfg.RevocationsStaleAfter = 50 * time.Millisecond
	v := authn.NewVerifier(cfg, jwks.Client(), logging.ForTest(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	signer := authn.NewSigner(key, issuer, audience)
	now := time.Now()
	sign := func(sub, sid string, at time.Time) string {
		t.Helper()
		c := claims(sub)
		c.SessionID = sid
		tok, err := signer.Sign(c, 15*time.Minute, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	loggedOut := sign("user-1", "session-1", now)
	otherSession := sign("user-1", "session-2", now)
	before := sign("user-2", "session-3", now.Add(-2*time.Second))
	after := sign("user-2", "session-4", now.Add(2*time.Second))
	noSID := sign("user-2", "", now.Add(-2*time.Second))
	for _, tok := range []string{loggedOut, otherSession, before, after, noSID} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("before any revocation: %v", err)
		}
	}

	exp := now.Add(time.Hour)
	revs.add(authn.Revocation{AccountID: "user-1", SessionID: "session-1", IssuedBefore: now, ExpiresAt: exp})
	revs.add(authn.Revocation{AccountID: "user-2", IssuedBefore: now.Truncate(time.Second), ExpiresAt: exp})
	refused := func(tok string) bool {
		_, err := v.Verify(context.Background(), tok)
		return apierr.Is(err, apierr.Unauthenticated)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(refused(loggedOut) && refused(before) && refused(noSID)) {
		if time.Now().After(deadline) {
			t.Fatal("revoked tokens still accepted 5s after they were listed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name, tok := range map[string]string{"another session": otherSession, "a token issued after the cut-off": after} {
		if refused(tok) {
			t.Errorf("%s was refused, want accepted", name)
		}
	}

	// Auth goes away: the list is kept, other tokens still work.
	revs.down.Store(true)
	polls := revs.polls.Load()
	for revs.polls.Load() < polls+5 {
		time.Sleep(10 * time.Millisecond)
	}
	if !refused(loggedOut) || refused(otherSession) {
		t.Error("with auth down: the revocation was forgotten or every token refused; want the last list kept")
	}
	if _, err := v.Verify(context.Background(), forge(t, jwt.SigningMethodEdDSA, key, authn.KID(signer.Public()), nil)); err != nil {
		t.Errorf("with auth down: a valid token got %v, want accepted", err)
	}
}
