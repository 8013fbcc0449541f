package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Config is the token-verification part of a service's configuration.
type Config struct {
	Issuer   string `env:"AUTH_ISSUER" default:"mylittleshopping-auth"`
	Audience string `env:"AUTH_AUDIENCE" default:"mylittleshopping"`
	// JWKSURL is where auth publishes its public keys; the default goes
	// through Consul (use a discovery client).
	JWKSURL string `env:"AUTH_JWKS_URL" default:"http://auth.service.consul/.well-known/jwks.json"`
	// Leeway absorbs clock skew between hosts on exp and nbf.
	Leeway time.Duration `env:"AUTH_TOKEN_LEEWAY" default:"30s"`
	// KeysMaxAge is how long fetched keys are trusted before a refetch;
	// a failed refetch keeps the old keys.
	KeysMaxAge time.Duration `env:"AUTH_JWKS_MAX_AGE" default:"5m"`
	// RefetchInterval bounds how often an unknown kid triggers a refetch, so
	// a flood of forged kids cannot turn into a flood on auth.
	RefetchInterval time.Duration `env:"AUTH_JWKS_REFETCH_INTERVAL" default:"10s"`
	// RevocationsURL is auth's GET /internal/revocations; empty: the one
	// next to JWKSURL. Verifier.Run polls it every RevocationsInterval,
	// which bounds how long a revoked token still works (plus one request).
	RevocationsURL      string        `env:"AUTH_REVOCATIONS_URL"`
	RevocationsInterval time.Duration `env:"AUTH_REVOCATIONS_POLL_INTERVAL" default:"2s"`
	// RevocationsStaleAfter is how long polls may fail before the verifier
	// warns that revocations are stale (it goes on accepting tokens).
	RevocationsStaleAfter time.Duration `env:"AUTH_REVOCATIONS_STALE_AFTER" default:"1m"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.RevocationsInterval <= 0 || c.RevocationsInterval > time.Minute {
		return errors.New("AUTH_REVOCATIONS_POLL_INTERVAL must be between 0s (excluded) and 1m: it bounds how long a revoked token keeps working")
	}
	if c.RevocationsStaleAfter < c.RevocationsInterval {
		return errors.New("AUTH_REVOCATIONS_STALE_AFTER must be at least AUTH_REVOCATIONS_POLL_INTERVAL")
	}
	if c.revocationsURL() == "" {
		return errors.New("AUTH_REVOCATIONS_URL must be a URL (or empty, with AUTH_JWKS_URL a URL)")
	}
	return nil
}

// Verifier checks access tokens against the keys auth publishes and the
// revocations it lists (learned while Run polls them). It is safe for
// concurrent use; build one per process.
type Verifier struct {
	cfg    Config
	client *http.Client
	log    hclog.Logger
	parser *jwt.Parser
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt, successful or not
	fetching  chan struct{}

	revs revocations
}

// NewVerifier returns a verifier fetching keys with client (a discovery
// client in the cluster).
func NewVerifier(cfg Config, client *http.Client, log hclog.Logger) *Verifier {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return &Verifier{
		cfg:    cfg,
		client: client,
		log:    log.Named("authn"),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
		now:  time.Now,
		keys: map[string]ed25519.PublicKey{},
		revs: revocations{sessions: map[string]time.Time{}, accounts: map[string]Revocation{}},
	}
}

// errKeysUnavailable is a key-fetch failure with no key to fall back on:
// the token may be fine, so the caller gets 503, not 401.
var errKeysUnavailable = errors.New("token keys unavailable")

// Verify checks raw and returns its claims. Any fault of the token is an
// apierr.Unauthenticated error saying what is wrong; keys that cannot be
// fetched at all are apierr.Unavailable.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if alg := headerAlg(raw); alg != "" && alg != jwt.SigningMethodEdDSA.Alg() {
		return nil, apierr.Errorf(apierr.Unauthenticated, "access token algorithm %q is refused; only EdDSA is accepted", alg)
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return v.key(ctx, kid)
	})
	if err != nil {
		if errors.Is(err, errKeysUnavailable) {
			return nil, apierr.E(apierr.Unavailable, err)
		}
		return nil, apierr.E(apierr.Unauthenticated, describe(err))
	}
	if claims.Subject == "" {
		return nil, apierr.Errorf(apierr.Unauthenticated, "invalid access token: no subject")
	}
	if !claims.HasRole(RoleBuyer, RoleSeller, RoleAdmin) {
		return nil, apierr.Errorf(apierr.Unauthenticated, "invalid access token: unknown role %q", claims.Role)
	}
	if v.revs.revoked(claims) {
		return nil, apierr.Errorf(apierr.Unauthenticated, "access token was revoked (logout, password change or disabled account); log in again")
	}
	return claims, nil
}

// headerAlg reads the alg of a token's header without trusting it, so that
// a forged algorithm gets its own precise refusal.
func headerAlg(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > 1024 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// describe turns the parser's error into the message a client reads:
// precise about which check failed, silent about keys and internals.
func describe(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("access token expired; refresh it")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errors.New("access token not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errors.New("access token from another issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errors.New("access token for another audience")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New("access token lacks a required claim")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errors.New("access token signature is invalid")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("access token is malformed")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errors.New("access token cannot be verified: unknown key or algorithm")
	default:
		return errors.New("access token is invalid")
	}
}

// key returns the public key kid names, fetching the JWKS when the keys are
// older than KeysMaxAge or kid is unknown (at most once per
// RefetchInterval). Concurrent callers share one fetch.
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	for {
		v.mu.Lock()
		k, known := v.keys[kid]
		now := v.now()
		if known && !v.fetchedAt.IsZero() && now.Sub(v.fetchedAt) < v.cfg.KeysMaxAge {
			v.mu.Unlock()
			return k, nil
		}
		if wait := v.fetching; wait != nil {
			v.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if !v.triedAt.IsZero() && now.Sub(v.triedAt) < v.cfg.RefetchInterval {
			// Asked recently: answer from what we have (stale keys are
			// better than none while auth is unreachable).
			empty := len(v.keys) == 0
			v.mu.Unlock()
			switch {
			case known:
				return k, nil
			case empty:
				return nil, fmt.Errorf("%w: none fetched from %s yet", errKeysUnavailable, v.cfg.JWKSURL)
			default:
				return nil, fmt.Errorf("unknown kid %q", kid)
			}
		}
		done := make(chan struct{})
		v.fetching, v.triedAt = done, now
		v.mu.Unlock()

		keys, err := v.fetch(ctx)

		v.mu.Lock()
		if err == nil {
			v.keys, v.fetchedAt = keys, v.now()
		} else {
			v.log.Warn("fetch token keys", "url", v.cfg.JWKSURL, "error", err, "keeping", len(v.keys))
		}
		v.fetching = nil
		close(done)
		v.mu.Unlock()
	}
}

func (v *Verifier) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, jwk := range set.Keys {
		pub, err := jwk.publicKey()
		if err != nil {
			v.log.Warn("ignoring jwks key", "kid", jwk.Kid, "error", err)
			continue
		}
		keys[jwk.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable Ed25519 key")
	}
	return keys, nil
}

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims of the request's caller, if it sent a
// valid token.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

type authErrKey struct{}

// Middleware verifies the request's bearer token and puts its claims in the
// context. A request without a valid token goes on as anonymous: public
// endpoints (login, the catalogue) must work even when a client sends a
// stale token, and protected ones get, through Require, the precise reason
// its token was refused.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			err := apierr.Errorf(apierr.Unauthenticated, "Authorization header must be \"Bearer <access token>\"")
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, authErrKey{}, err)))
			return
		}
		claims, err := v.Verify(ctx, strings.TrimSpace(token))
		if err != nil {
			logging.FromContext(ctx).Debug("bearer token refused", "error", err)
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, authErrKey{}, err)))
			return
		}
		ctx = WithClaims(ctx, claims)
		ctx = logging.With(ctx, "user_id", claims.Subject)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Require returns the caller's claims; an anonymous request is a 401 that
// says why (no token, or what was wrong with the one sent).
func Require(ctx context.Context) (*Claims, error) {
	if c, ok := FromContext(ctx); ok {
		return c, nil
	}
	if err, ok := ctx.Value(authErrKey{}).(error); ok {
		return nil, err
	}
	return nil, apierr.Errorf(apierr.Unauthenticated, "this endpoint needs a bearer access token")
}

// RequireRole is Require for callers with one of roles; others get 403.
func RequireRole(ctx context.Context, roles ...string) (*Claims, error) {
	c, err := Require(ctx)
	if err != nil {
		return nil, err
	}
	if !c.HasRole(roles...) {
		return nil, apierr.Errorf(apierr.Forbidden, "this endpoint is for %s accounts", strings.Join(roles, " or "))
	}
	return c, nil
}

// RequireVerified is Require for callers whose email address is verified.
func RequireVerified(ctx context.Context) (*Claims, error) {
	c, err := Require(ctx)
	if err != nil {
		return nil, err
	}
	if !c.EmailVerified {
		return nil, apierr.Errorf(apierr.Forbidden, "verify your email address first")
	}
	return c, nil
}

// CallerID is the authenticated caller's account id: 401 for an anonymous
// request or a token whose subject is not an account id.
func CallerID(ctx context.Context) (uuid.UUID, error) {
	c, err := Require(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	return c.AccountID()
}

// SellerID is the caller's account id if the caller is a seller with a
// verified email address: 401 for an anonymous request, 403 for another
// role or an unverified seller.
func SellerID(ctx context.Context) (uuid.UUID, error) {
	c, err := RequireRole(ctx, RoleSeller)
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := RequireVerified(ctx); err != nil {
		return uuid.Nil, err
	}
	return c.AccountID()
}
