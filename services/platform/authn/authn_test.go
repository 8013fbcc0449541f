package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

const (
	issuer   = "mylittleshopping-auth"
	audience = "mylittleshopping"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// jwksServer publishes the public halves of keys (changeable) and counts
// fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []ed25519.PublicKey
	fetches atomic.Int64
	down    atomic.Bool
}

func newJWKS(t testing.TB, keys ...ed25519.PrivateKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		set := authn.JWKS{}
		for _, k := range s.keys {
			set.Keys = append(set.Keys, authn.PublicJWK(k))
		}
		s.mu.Unlock()
		_ = httpx.WriteJSON(w, http.StatusOK, set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...ed25519.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.Public().(ed25519.PublicKey))
	}
}

func config(url string) authn.Config {
	return authn.Config{
		Issuer: issuer, Audience: audience, JWKSURL: url + "/.well-known/jwks.json",
		Leeway: 30 * time.Second, KeysMaxAge: 5 * time.Minute, RefetchInterval: time.Hour,
	}
}

// protected is a service endpoint that needs a verified caller.
func protected(v *authn.Verifier) http.Handler {
	return httpx.Middleware(logging.NewNull(), v.Middleware(httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		c, err := authn.Require(r.Context())
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, map[string]string{"sub": c.Subject, "role": c.Role})
	})))
}

func claims(sub string) authn.Claims {
	return authn.Claims{Role: authn.RoleBuyer, Email: "a@example.com", EmailVerified: true,
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}
}

// forge signs arbitrary registered claims with key, bypassing Signer's
// defaults, for the negative cases.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, mutate func(*authn.Claims)) string {
	t.Helper()
	now := time.Now()
	c := claims("user-1")
	c.Issuer = issuer
	c.Audience = jwt.ClaimStrings{audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(15 * time.Minute))
	if mutate != nil {
		mutate(&c)
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenSuite(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	other := newKey(t)
	jwks := newJWKS(t, key)
	v := authn.NewVerifier(config(jwks.URL), jwks.Client(), logging.ForTest(t))
	srv := httptest.NewServer(protected(v))
	t.Cleanup(srv.Close)
	kid := authn.KID(key.Public().(ed25519.PublicKey))
	pub := []byte(key.Public().(ed25519.PublicKey))

	valid, err := authn.NewSigner(key, issuer, audience).Sign(claims("user-1"), 15*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	unsignedNone := func() string {
		c := claims("user-1")
		c.Issuer, c.Audience = issuer, jwt.ClaimStrings{audience}
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	flipSig := func(tok string) string {
		i := strings.LastIndex(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
		sig[0] ^= 0xff
		return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
	}

	tests := []struct {
		name   string
		header string
		status int
		detail string
	}{
		{"valid", "Bearer " + valid, 200, ""},
		{"alg none", "Bearer " + unsignedNone, 401, `algorithm "none" is refused`},
		{"HS256 signed with the public key", "Bearer " + forge(t, jwt.SigningMethodHS256, pub, kid, nil), 401, `algorithm "HS256" is refused`},
		{"expired", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		}), 401, "expired"},
		{"not yet valid", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(5 * time.Minute))
		}), 401, "not valid yet"},
		{"wrong issuer", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) { c.Issuer = "evil" }), 401, "another issuer"},
		{"wrong audience", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) {
			c.Audience = jwt.ClaimStrings{"another-app"}
		}), 401, "another audience"},
		{"no expiry", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) { c.ExpiresAt = nil }), 401, "required claim"},
		{"bad signature", "Bearer " + flipSig(valid), 401, "signature is invalid"},
		{"signed by another key under our kid", "Bearer " + forge(t, jwt.SigningMethodEdDSA, other, kid, nil), 401, "signature is invalid"},
		{"unknown kid", "Bearer " + forge(t, jwt.SigningMethodEdDSA, other, authn.KID(other.Public().(ed25519.PublicKey)), nil), 401, "unknown key"},
		{"no kid", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, "", nil), 401, "cannot be verified"},
		{"truncated", "Bearer " + valid[:len(valid)-20], 401, ""},
		{"two segments", "Bearer " + valid[:strings.LastIndex(valid, ".")], 401, "malformed"},
		{"garbage", "Bearer not-a-token", 401, "malformed"},
		{"no subject", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) { c.Subject = "" }), 401, "no subject"},
		{"unknown role", "Bearer " + forge(t, jwt.SigningMethodEdDSA, key, kid, func(c *authn.Claims) { c.Role = "root" }), 401, "unknown role"},
		{"basic scheme", "Basic dXNlcjpwYXNz", 401, "Bearer"},
		{"anonymous", "", 401, "needs a bearer access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != httpx.ProblemContentType {
				t.Errorf("got Content-Type %q, want problem+json", ct)
			}
			var p httpx.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Status != 401 || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got %d %q, want 401 mentioning %q", p.Status, p.Detail, tt.detail)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("got no WWW-Authenticate header on a 401 (RFC 6750)")
			}
		})
	}
}

// TestPublicEndpointIgnoresBadToken: a stale token must not break login or
// the catalogue; the request goes on as anonymous.
func TestPublicEndpointIgnoresBadToken(t *testing.T) {
	t.Parallel()
	jwks := newJWKS(t, newKey(t))
	v := authn.NewVerifier(config(jwks.URL), jwks.Client(), logging.ForTest(t))
	var anonymous bool
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := authn.FromContext(r.Context())
		anonymous = !ok
	}))
	req := httptest.NewRequest(http.MethodGet, "/v1/products", nil)
	req.Header.Set("Authorization", "Bearer expired.or.forged")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !anonymous {
		t.Fatalf("got status %d anonymous=%v, want 200 and anonymous", rec.Code, anonymous)
	}
}

func TestKeyRotationAndFetchBounds(t *testing.T) {
	t.Parallel()
	oldKey, rotated := newKey(t), newKey(t)
	jwks := newJWKS(t, oldKey)
	cfg := config(jwks.URL)
	cfg.RefetchInterval = 200 * time.Millisecond
	v := authn.NewVerifier(cfg, jwks.Client(), logging.ForTest(t))
	ctx := context.Background()
	sign := func(k ed25519.PrivateKey) string {
		s, err := authn.NewSigner(k, issuer, audience).Sign(claims("u"), time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Many concurrent first verifications share one fetch.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(ctx, sign(oldKey)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := jwks.fetches.Load(); n != 1 {
		t.Fatalf("got %d fetches for 20 concurrent verifications, want 1", n)
	}

	// Auth rotates: the new kid is unknown until a refetch, which an unknown
	// kid triggers once the refetch interval has passed.
	jwks.set(rotated, oldKey)
	time.Sleep(250 * time.Millisecond)
	if _, err := v.Verify(ctx, sign(rotated)); err != nil {
		t.Fatalf("token of the rotated key: got %v, want valid", err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("got %d fetches, want 2", n)
	}

	// A flood of forged kids costs at most one fetch per interval.
	forged := newKey(t)
	for range 50 {
		if _, err := v.Verify(ctx, sign(forged)); !apierr.Is(err, apierr.Unauthenticated) {
			t.Fatalf("forged kid: got %v, want unauthenticated", err)
		}
	}
	if n := jwks.fetches.Load(); n > 3 {
		t.Fatalf("got %d fetches after 50 forged kids, want at most 3", n)
	}

	// Auth down: known keys keep working.
	jwks.down.Store(true)
	time.Sleep(250 * time.Millisecond)
	if _, err := v.Verify(ctx, sign(rotated)); err != nil {
		t.Fatalf("auth down, known key: got %v, want valid", err)
	}
}

func TestKeysUnavailableIs503(t *testing.T) {
	t.Parallel()
	jwks := newJWKS(t, newKey(t))
	jwks.down.Store(true)
	v := authn.NewVerifier(config(jwks.URL), jwks.Client(), logging.ForTest(t))
	tok, _ := authn.NewSigner(newKey(t), issuer, audience).Sign(claims("u"), time.Minute, time.Now())
	_, err := v.Verify(context.Background(), tok)
	if got := apierr.KindOf(err); got != apierr.Unavailable {
		t.Fatalf("got %v (%v), want unavailable: the token may be fine, auth is not", got, err)
	}
}

func TestRoleHelpers(t *testing.T) {
	t.Parallel()
	buyer := claims("b")
	unverified := claims("u")
	unverified.EmailVerified = false
	tests := []struct {
		name string
		ctx  context.Context
		fn   func(context.Context) (*authn.Claims, error)
		want apierr.Kind
		ok   bool
	}{
		{"anonymous require", context.Background(), authn.Require, apierr.Unauthenticated, false},
		{"buyer require", authn.WithClaims(context.Background(), &buyer), authn.Require, 0, true},
		{"buyer as seller", authn.WithClaims(context.Background(), &buyer), func(ctx context.Context) (*authn.Claims, error) {
			return authn.RequireRole(ctx, authn.RoleSeller, authn.RoleAdmin)
		}, apierr.Forbidden, false},
		{"anonymous as seller", context.Background(), func(ctx context.Context) (*authn.Claims, error) {
			return authn.RequireRole(ctx, authn.RoleSeller)
		}, apierr.Unauthenticated, false},
		{"unverified", authn.WithClaims(context.Background(), &unverified), authn.RequireVerified, apierr.Forbidden, false},
		{"verified", authn.WithClaims(context.Background(), &buyer), authn.RequireVerified, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.fn(tt.ctx)
			if tt.ok {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if got := apierr.KindOf(err); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCallerIDs: the ids handlers act on, with the status a caller gets
// for each reason it may not act.
func TestCallerIDs(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	with := func(mutate func(*authn.Claims)) context.Context {
		c := claims(id.String())
		mutate(&c)
		return authn.WithClaims(context.Background(), &c)
	}
	buyer := with(func(*authn.Claims) {})
	seller := with(func(c *authn.Claims) { c.Role = authn.RoleSeller })
	unverified := with(func(c *authn.Claims) { c.Role, c.EmailVerified = authn.RoleSeller, false })
	badSubject := authn.WithClaims(context.Background(), &authn.Claims{Role: authn.RoleSeller, EmailVerified: true,
		RegisteredClaims: jwt.RegisteredClaims{Subject: "user-1"}})
	tests := []struct {
		name string
		ctx  context.Context
		fn   func(context.Context) (uuid.UUID, error)
		want apierr.Kind // 0: id is returned
	}{
		{"caller anonymous", context.Background(), authn.CallerID, apierr.Unauthenticated},
		{"caller buyer", buyer, authn.CallerID, 0},
		{"caller subject not an id", badSubject, authn.CallerID, apierr.Unauthenticated},
		{"seller anonymous", context.Background(), authn.SellerID, apierr.Unauthenticated},
		{"seller as buyer", buyer, authn.SellerID, apierr.Forbidden},
		{"seller unverified", unverified, authn.SellerID, apierr.Forbidden},
		{"seller subject not an id", badSubject, authn.SellerID, apierr.Unauthenticated},
		{"seller", seller, authn.SellerID, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(tt.ctx)
			if tt.want == 0 {
				if err != nil || got != id {
					t.Fatalf("got %v, %v, want %v, nil", got, err, id)
				}
				return
			}
			if k := apierr.KindOf(err); k != tt.want || got != uuid.Nil {
				t.Fatalf("got %v, %v (kind %v), want uuid.Nil and kind %v", got, err, k, tt.want)
			}
		})
	}
}

func TestKIDIsRFC7638Thumbprint(t *testing.T) {
	t.Parallel()
	// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if got, want := authn.KID(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("got kid %q, want %q", got, want)
	}
}
