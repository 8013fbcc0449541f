package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/auth"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Sellers finds sellers' email addresses, which orders needs with each line
// (it emails every seller a new-sale notice and can ask no one else).
//
// auth has no internal lookup, so the aggregator reads accounts as an
// admin service account (GET /v1/accounts/{id}), logging in when its
// access token is missing or about to expire. Addresses never change in
// auth (no endpoint changes an email), so they are cached for the life of
// the process. When auth gains an internal lookup, this becomes one call.
type Sellers struct {
	auth     *auth.ClientWithResponses
	email    string
	password string
	log      hclog.Logger
	now      func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	cache   map[uuid.UUID]string
}

// maxCachedSellers bounds the cache; beyond it the cache starts over.
const maxCachedSellers = 100_000

// NewSellers returns a directory that logs in to auth as email/password.
func NewSellers(client *auth.ClientWithResponses, email, password string, log hclog.Logger) *Sellers {
	return &Sellers{auth: client, email: email, password: password, log: log.Named("sellers"), now: time.Now, cache: map[uuid.UUID]string{}}
}

// errNoServiceAccount is the directory's state when no account is set.
var errNoServiceAccount = errors.New("no service account configured (AGGREGATOR_SERVICE_ACCOUNT_EMAIL)")

// Emails returns the address of each seller in ids.
func (s *Sellers) Emails(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]string, error) {
	out := make(map[uuid.UUID]string, len(ids))
	var missing []uuid.UUID
	s.mu.Lock()
	for _, id := range ids {
		if e, ok := s.cache[id]; ok {
			out[id] = e
		} else {
			missing = append(missing, id)
		}
	}
	s.mu.Unlock()
	for _, id := range missing {
		e, err := s.lookup(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = e
	}
	return out, nil
}

func (s *Sellers) lookup(ctx context.Context, id uuid.UUID) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		token, err := s.accessToken(ctx, attempt > 0)
		if err != nil {
			return "", err
		}
		resp, err := s.auth.GetAccountWithResponse(ctx, id, func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		})
		if err != nil || resp.StatusCode() >= 500 {
			return "", reply.Check(ctx, "checkout", resp, err)
		}
		switch {
		case resp.JSON200 != nil:
			s.mu.Lock()
			if len(s.cache) >= maxCachedSellers {
				s.cache = map[uuid.UUID]string{}
			}
			s.cache[id] = resp.JSON200.Email
			s.mu.Unlock()
			return resp.JSON200.Email, nil
		case resp.StatusCode() == http.StatusUnauthorized:
			continue // the token expired early or the keys rotated: log in again
		case resp.StatusCode() == http.StatusNotFound:
			return "", apierr.WithCode(apierr.Conflict, "seller-gone", fmt.Errorf(
				"the seller %s of a product in the cart no longer has an account; remove the product from the cart", id))
		default:
			return "", fmt.Errorf("read seller %s: %w", id, reply.Problem(resp))
		}
	}
	return "", fmt.Errorf("read seller %s: the service account's token is refused", id)
}

// accessToken returns a token of the service account, logging in when
// there is none, it expires within a minute, or fresh is asked.
func (s *Sellers) accessToken(ctx context.Context, fresh bool) (string, error) {
	if s.email == "" {
		return "", reply.Unavailable(ctx, "checkout", errNoServiceAccount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fresh && s.token != "" && s.now().Add(time.Minute).Before(s.expires) {
		return s.token, nil
	}
	resp, err := s.auth.LoginWithResponse(ctx, auth.LoginRequest{Email: s.email, Password: s.password})
	if err != nil || resp.StatusCode() >= 500 {
		return "", reply.Check(ctx, "checkout", resp, err)
	}
	if resp.JSON200 == nil {
		return "", fmt.Errorf("service account login: %w", reply.Problem(resp))
	}
	s.token = resp.JSON200.AccessToken
	s.expires = s.now().Add(time.Duration(resp.JSON200.ExpiresIn) * time.Second)
	s.log.Debug("service account logged in", "expires_in", resp.JSON200.ExpiresIn)
	return s.token, nil
}
