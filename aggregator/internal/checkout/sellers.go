package checkout

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/auth"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Sellers finds sellers' email addresses, which orders needs with each line
// (it emails every seller a new-sale notice and can ask no one else).
//
// It reads them from auth's internal account lookup (GET
// /internal/accounts/{id}), which needs no user token: like every
// /internal route it is reached only from inside the cluster. Addresses
// never change in auth (no endpoint changes an email), so they are cached
// for the life of the process.
type Sellers struct {
	auth *auth.ClientWithResponses

	mu    sync.Mutex
	cache map[uuid.UUID]string
}

// maxCachedSellers bounds the cache; beyond it the cache starts over.
const maxCachedSellers = 100_000

// NewSellers returns a directory over auth's client.
func NewSellers(client *auth.ClientWithResponses) *Sellers {
	return &Sellers{auth: client, cache: map[uuid.UUID]string{}}
}

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
	resp, err := s.auth.GetInternalAccountWithResponse(ctx, id)
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
	case resp.StatusCode() == http.StatusNotFound:
		return "", apierr.WithCode(apierr.Conflict, "seller-gone", fmt.Errorf(
			"the seller %s of a product in the cart no longer has an account; remove the product from the cart", id))
	default:
		return "", fmt.Errorf("read seller %s: %w", id, reply.Problem(resp))
	}
}
