// Package authn is how every service knows who calls it: the claims of the
// shop's access tokens, the signer the auth service issues them with, and
// the verifier each service checks them with locally, against the public
// keys auth publishes (JWKS) and the revocations it lists, both fetched in
// the background — no call to auth per request.
//
// Tokens are JWTs signed with EdDSA (Ed25519) only; the verifier refuses
// every other algorithm, so "alg: none" and HMAC-with-the-public-key
// forgeries fail before any key is looked at.
package authn

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Roles of an account.
const (
	RoleBuyer  = "buyer"
	RoleSeller = "seller"
	RoleAdmin  = "admin"
)

// Claims are the facts an access token carries about its holder.
type Claims struct {
	Role          string `json:"role"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	// SessionID names the session (auth's refresh-token family) the token
	// was issued in, so that ending the session revokes its tokens.
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// AccountID is the holder's account id parsed from the subject; a subject
// that is not one is a 401, as any other fault of the token.
func (c *Claims) AccountID() (uuid.UUID, error) {
	id, err := uuid.Parse(c.Subject)
	if err != nil {
		return uuid.Nil, apierr.Errorf(apierr.Unauthenticated, "access token subject %q is not an account id", c.Subject)
	}
	return id, nil
}

// HasRole reports whether the holder has one of roles.
func (c *Claims) HasRole(roles ...string) bool {
	for _, r := range roles {
		if c.Role == r {
			return true
		}
	}
	return false
}

// Signer issues access tokens with one Ed25519 key.
type Signer struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
}

// NewSigner returns a signer for key; tokens carry issuer and audience.
func NewSigner(key ed25519.PrivateKey, issuer, audience string) *Signer {
	return &Signer{
		key:      key,
		kid:      KID(key.Public().(ed25519.PublicKey)),
		issuer:   issuer,
		audience: audience,
	}
}

// KID is the key id the signer puts in every token header.
func (s *Signer) KID() string { return s.kid }

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns a token for c valid from now for ttl. It sets the issuer,
// audience, issued-at, not-before, expiry and a fresh token id.
func (s *Signer) Sign(c Claims, ttl time.Duration, now time.Time) (string, error) {
	if c.Subject == "" {
		return "", errors.New("sign: a token needs a subject")
	}
	if ttl <= 0 {
		return "", errors.New("sign: ttl must be positive")
	}
	now = now.UTC().Truncate(time.Second)
	c.Issuer = s.issuer
	c.Audience = jwt.ClaimStrings{s.audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// KID returns the RFC 7638 thumbprint of an Ed25519 public key: stable,
// derived from the key alone, so a key keeps its id wherever it is loaded.
func KID(pub ed25519.PublicKey) string {
	// Members in lexicographic order, no whitespace (RFC 7638 §3.2).
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWK is an Ed25519 public key in JSON Web Key form (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the document auth serves at /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns pub as a JWK with its thumbprint as kid.
func PublicJWK(pub ed25519.PublicKey) JWK {
	return JWK{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(pub),
		Kid: KID(pub),
		Alg: "EdDSA",
		Use: "sig",
	}
}

// publicKey decodes an OKP/Ed25519 JWK, refusing any other kind.
func (k JWK) publicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, errors.New("not an Ed25519 key")
	}
	if k.Alg != "" && k.Alg != "EdDSA" {
		return nil, errors.New("not an EdDSA key")
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, errors.New("not a signing key")
	}
	raw, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("malformed x")
	}
	return ed25519.PublicKey(raw), nil
}
