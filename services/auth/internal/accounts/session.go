package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Tokens is what a login or a refresh hands out.
type Tokens struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
}

// newSecret returns a fresh token (32 random bytes, base64url) and the
// SHA-256 it is stored under. The plaintext leaves only to its owner.
func newSecret() (plain string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	plain = base64.RawURLEncoding.EncodeToString(b)
	return plain, hashSecret(plain)
}

// hashSecret is how a presented token is looked up. A plain SHA-256 is
// enough: the token has 256 bits of entropy, so there is nothing to guess.
func hashSecret(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

// errBadCredentials is the one answer to a wrong email or password, so that
// the two cannot be told apart.
var errBadCredentials = apierr.Errorf(apierr.Unauthenticated, "email or password is incorrect")

// errBadRefresh is the one answer to a refresh token that is unknown,
// spent, revoked, expired or whose account can no longer log in.
var errBadRefresh = apierr.Errorf(apierr.Unauthenticated, "refresh token is not valid; log in again")

// Login checks email and password and opens a session; client is who asks
// (see the lock-out rules in throttle.go). Unknown addresses and wrong
// passwords take the same time and get the same error; both count towards
// the lock-outs.
func (s *Service) Login(ctx context.Context, email, password, client string) (Tokens, error) {
	ctx, leave, err := s.credential(ctx)
	if err != nil {
		return Tokens{}, err
	}
	defer leave()
	email = NormalizeEmail(email)
	keys := keysFor(email, client)
	if err := s.admit(ctx, keys); err != nil {
		return Tokens{}, err
	}
	acc, err := getAccountByEmail(ctx, s.pool, email)
	known := err == nil
	if err != nil && !apierr.Is(err, apierr.NotFound) {
		return Tokens{}, err
	}
	encoded := acc.passwordHash
	if !known {
		encoded = s.dummyHash
	}
	ok, err := s.check(ctx, encoded, password)
	if err != nil {
		// Busy (or gone): the password was not checked, so the attempt
		// does not count.
		s.unreserve(ctx, keys.pair)
		return Tokens{}, err
	}
	if !known || !ok {
		var owner *Account
		if known {
			owner = &acc
		}
		return Tokens{}, s.recordFailure(ctx, keys, owner, errBadCredentials)
	}
	if err := clearThrottle(ctx, s.pool, keys.pair); err != nil {
		return Tokens{}, err
	}
	if acc.DisabledAt != nil {
		// Said only to whoever knows the password.
		return Tokens{}, errAccountDisabled
	}
	s.upgradeHash(ctx, acc, password)
	family, err := uuid.NewV7()
	if err != nil {
		return Tokens{}, err
	}
	return s.issue(ctx, s.pool, acc, family)
}

var errAccountDisabled = apierr.WithCode(apierr.Forbidden, "account-disabled", errors.New("account is disabled; contact support"))

// errLocked is the answer while an address is locked out. It depends on the
// lock alone, so it is the same for known and unknown addresses.
func errLocked(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	return apierr.RetryLater(apierr.TooManyRequests, wait,
		fmt.Errorf("too many failed logins for this address; try again in %d seconds", secs))
}

// upgradeHash rehashes the password when its hash is cheaper than the
// configured cost. A failure only delays the upgrade to the next login.
func (s *Service) upgradeHash(ctx context.Context, acc Account, password string) {
	p, _, _, err := ParseHash(acc.passwordHash)
	if err != nil || p.AtLeast(s.params) {
		return
	}
	hash, err := s.hash(ctx, password)
	if err == nil {
		err = setPassword(ctx, s.pool, acc.ID, hash)
	}
	if err != nil {
		logging.Of(ctx, s.log).Warn("rehash password", "account_id", acc.ID, "error", err)
	}
}

// issue signs an access token for acc and stores a new refresh token in
// family.
func (s *Service) issue(ctx context.Context, q pgdb.Querier, acc Account, family uuid.UUID) (Tokens, error) {
	plain, hash := newSecret()
	if err := insertRefreshToken(ctx, q, hash, family, acc.ID, s.cfg.RefreshTokenTTL); err != nil {
		return Tokens{}, err
	}
	access, err := s.signer.Sign(authn.Claims{
		Role:             string(acc.Role),
		Email:            acc.Email,
		EmailVerified:    acc.VerifiedAt != nil,
		SessionID:        family.String(),
		RegisteredClaims: jwt.RegisteredClaims{Subject: acc.ID.String()},
	}, s.cfg.AccessTokenTTL, time.Now())
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, ExpiresIn: s.cfg.AccessTokenTTL, RefreshToken: plain}, nil
}

// Refresh spends a refresh token and issues its successor, with an access
// token that re-reads the account's role and verification. A token that was
// already spent was copied: its whole family is revoked, the thief's
// session and the owner's alike.
func (s *Service) Refresh(ctx context.Context, plain string) (Tokens, error) {
	var (
		out     Tokens
		refusal error
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		hash := hashSecret(plain)
		tok, err := spendRefreshToken(ctx, tx, hash)
		if apierr.Is(err, apierr.NotFound) {
			refusal = errBadRefresh
			old, err := getRefreshToken(ctx, tx, hash)
			if apierr.Is(err, apierr.NotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if old.UsedAt != nil && old.RevokedAt == nil {
				logging.Of(ctx, s.log).Warn("spent refresh token presented again; revoking its family",
					"account_id", old.AccountID, "family_id", old.FamilyID)
				return revokeFamily(ctx, tx, old.FamilyID, s.revocationTTL())
			}
			return nil
		}
		if err != nil {
			return err
		}
		acc, err := getAccount(ctx, tx, tok.AccountID)
		if apierr.Is(err, apierr.NotFound) {
			refusal = errBadRefresh // deleted while we spent the token
			return nil
		}
		if err != nil {
			return err
		}
		if acc.DisabledAt != nil {
			refusal = errBadRefresh
			return revokeFamily(ctx, tx, tok.FamilyID, s.revocationTTL())
		}
		out, err = s.issue(ctx, tx, acc, tok.FamilyID)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	if refusal != nil {
		return Tokens{}, refusal
	}
	return out, nil
}

// Logout revokes the session of a refresh token, its access tokens
// included. Unknown and spent tokens are accepted silently: logging out
// twice is not an error.
func (s *Service) Logout(ctx context.Context, plain string) error {
	return revokeFamilyOf(ctx, s.pool, hashSecret(plain), s.revocationTTL())
}

// admit counts a login attempt of a client on an address before its
// password is checked, and refuses it (429) while the client is locked
// out of the address or of every address, or while the address's alarm
// is up and this client has already failed on it.
func (s *Service) admit(ctx context.Context, keys throttleKeys) error {
	var wait time.Duration
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		client, _, err := readThrottle(ctx, tx, keys.client)
		if err != nil {
			return err
		}
		account, _, err := readThrottle(ctx, tx, keys.account)
		if err != nil {
			return err
		}
		return updateThrottle(ctx, tx, keys.pair, keys.account, func(pair *throttle, now time.Time) {
			failedHere := pair.Failures > 0 || pair.Lockouts > 0
			switch {
			case client.locked(now) > 0:
				wait = client.locked(now)
			case failedHere && account.locked(now) > 0:
				wait = account.locked(now)
			default:
				wait = pair.reserve(now, PairMaxFailures)
			}
		})
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return errLocked(wait)
	}
	return nil
}

// unreserve gives back the reservation of an attempt whose password was
// never checked. A failure only leaves the attempt counted.
func (s *Service) unreserve(ctx context.Context, pair []byte) {
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return updateThrottle(ctx, tx, pair, nil, func(t *throttle, _ time.Time) { t.unreserve() })
	})
	if err != nil {
		logging.Of(ctx, s.log).Warn("give back a login attempt", "error", err)
	}
}

// recordFailure records a failed attempt under every key of keys and
// returns answer, the error the caller gets. owner is the address's
// account, if it has one: it is emailed when the failures of every client
// together raise the address's alarm.
func (s *Service) recordFailure(ctx context.Context, keys throttleKeys, owner *Account, answer error) error {
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := updateThrottle(ctx, tx, keys.pair, keys.account, func(t *throttle, now time.Time) { t.fail(now, PairMaxFailures) }); err != nil {
			return err
		}
		if err := updateThrottle(ctx, tx, keys.client, nil, func(t *throttle, now time.Time) { t.count(now, ClientMaxFailures) }); err != nil {
			return err
		}
		var raised time.Duration
		err := updateThrottle(ctx, tx, keys.account, keys.account, func(t *throttle, now time.Time) {
			if t.count(now, AccountMaxFailures) {
				raised = t.locked(now)
			}
		})
		if err != nil || raised == 0 || owner == nil {
			return err
		}
		// Once per lock period: the alarm cannot be raised again while
		// it is up.
		logging.Of(ctx, s.log).Warn("login failures from many clients; owner emailed", "account_id", owner.ID, "for", raised)
		_, err = mail.Enqueue(ctx, tx, failedLoginsEmail(*owner, raised))
		return err
	})
	if err != nil {
		return err
	}
	return answer
}
