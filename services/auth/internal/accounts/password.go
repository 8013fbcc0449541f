package accounts

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// ChangePassword replaces the actor's password after checking the current
// one, and ends every other session. keepRefresh, when it is a refresh
// token of the actor, names the session that survives. Wrong current
// passwords count under the (address, client) key alone: a stolen access
// token must not be a way to guess the password, and no other client's
// failures may block the owner's change.
func (s *Service) ChangePassword(ctx context.Context, actor Actor, current, next, keepRefresh, client string) error {
	ctx, leave, err := s.credential(ctx)
	if err != nil {
		return err
	}
	defer leave()
	acc, err := getAccount(ctx, s.pool, actor.ID)
	if err != nil {
		return err
	}
	if acc.DisabledAt != nil {
		return errAccountDisabled
	}
	pair := keysFor(acc.Email, client).pair
	var wait time.Duration
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return updateThrottle(ctx, tx, pair, accountKey(acc.Email), func(t *throttle, now time.Time) { wait = t.reserve(now, PairMaxFailures) })
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return errLocked(wait)
	}
	ok, err := s.check(ctx, acc.passwordHash, current)
	if err != nil {
		s.unreserve(ctx, pair)
		return err
	}
	if !ok {
		err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			return updateThrottle(ctx, tx, pair, accountKey(acc.Email), func(t *throttle, now time.Time) { t.fail(now, PairMaxFailures) })
		})
		if err != nil {
			return err
		}
		return apierr.InvalidFields(apierr.FieldError{Field: "current_password", Detail: "is incorrect"})
	}
	hash, err := s.hash(ctx, next)
	if err != nil {
		s.unreserve(ctx, pair)
		return err
	}
	var keep []byte
	if keepRefresh != "" {
		keep = hashSecret(keepRefresh)
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := setPassword(ctx, tx, acc.ID, hash); err != nil {
			return err
		}
		if err := clearThrottle(ctx, tx, pair); err != nil {
			return err
		}
		return revokeAccountSessions(ctx, tx, acc.ID, keep, s.revocationTTL())
	})
	if err != nil {
		return err
	}
	logging.Of(ctx, s.log).Info("password changed", "account_id", acc.ID)
	return nil
}

// ForgotPassword queues a reset email if email has an enabled account and
// its email quota allows, and does nothing otherwise: the caller cannot
// tell which.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		acc, err := getAccountByEmail(ctx, tx, email)
		if apierr.Is(err, apierr.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if acc.DisabledAt != nil {
			return nil
		}
		if ok, err := s.takeEmailQuota(ctx, tx, acc.Email); !ok || err != nil {
			return err
		}
		return enqueueTokenEmail(ctx, tx, resetPassword, acc.ID)
	})
}

// takeEmailQuota counts an email to address and reports whether it may be
// sent (EmailsPerHour). Beyond the quota the caller answers as if it had
// sent: nothing tells a flood's author that it stopped.
func (s *Service) takeEmailQuota(ctx context.Context, tx pgx.Tx, address string) (bool, error) {
	ok, err := takeEmailQuota(ctx, tx, digest("email", NormalizeEmail(address)), s.cfg.EmailsPerHour, time.Hour)
	if err == nil && !ok {
		logging.Of(ctx, s.log).Debug("email quota of the address reached; not sent")
	}
	return ok, err
}

// ResetPassword sets a new password with a reset token. The token is
// checked before the password is hashed, so that garbage tokens cost no
// hash. The token proves the mailbox, so the address becomes verified;
// every session ends (whoever knew the old password is out) and every
// client's lock-out on the address is lifted.
func (s *Service) ResetPassword(ctx context.Context, token, next string) error {
	// The token first, outside the bound on password requests: garbage
	// costs one indexed read and gets its 400, and cannot take the places
	// of real resets and logins.
	if err := checkEmailToken(ctx, s.pool, hashSecret(token), resetPassword); err != nil {
		return err
	}
	ctx, leave, err := s.credential(ctx)
	if err != nil {
		return err
	}
	defer leave()
	hash, err := s.hash(ctx, next)
	if err != nil {
		return err
	}
	var acc Account
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		accountID, err := spendEmailToken(ctx, tx, hashSecret(token), resetPassword)
		if err != nil {
			return err
		}
		if err := setPassword(ctx, tx, accountID, hash); err != nil {
			return err
		}
		if acc, err = markVerified(ctx, tx, accountID); err != nil {
			return err
		}
		if err := clearAccountThrottles(ctx, tx, accountKey(acc.Email)); err != nil {
			return err
		}
		return revokeAccountSessions(ctx, tx, accountID, nil, s.revocationTTL())
	})
	if err != nil {
		return err
	}
	logging.Of(ctx, s.log).Info("password reset", "account_id", acc.ID)
	return nil
}
