package servicetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// The issuer and audience services expect when not configured otherwise
// (authn.Config's defaults).
const (
	tokenIssuer   = "mylittleshopping-auth"
	tokenAudience = "mylittleshopping"
)

// Issuer signs access tokens as auth does, with a key of its own, and
// publishes the key's public half at JWKSURL as auth's
// /.well-known/jwks.json does: a service whose AUTH_JWKS_URL is JWKSURL
// trusts its tokens.
type Issuer struct {
	Signer  *authn.Signer
	JWKSURL string
}

// NewIssuer returns an issuer with a fresh Ed25519 key; its JWKS endpoint
// answers (on every path) until the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := authn.NewSigner(key, tokenIssuer, tokenAudience)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, authn.JWKS{Keys: []authn.JWK{authn.PublicJWK(signer.Public())}})
	}))
	t.Cleanup(jwks.Close)
	return &Issuer{Signer: signer, JWKSURL: jwks.URL}
}

// User is an account that a token of the issuer names.
type User struct {
	ID    uuid.UUID
	Email string
	Token string // an access token valid for 15 minutes
}

// User returns a new account of role, with a token; verified says whether
// its email address is.
func (i *Issuer) User(t testing.TB, role string, verified bool) User {
	t.Helper()
	id := uuid.New()
	email := role + "-" + id.String() + "@example.com"
	c := authn.Claims{Role: role, Email: email, EmailVerified: verified}
	c.Subject = id.String()
	tok, err := i.Signer.Sign(c, 15*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return User{ID: id, Email: email, Token: tok}
}
