package accounts

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// ChangePassword replaces the actor's password after checking the current
// one, and ends every other session. keepRefresh, when it is a refresh
// token of the actor, names the session that survives. Wrong current
// passwords count towards the login lock-out: a stolen access token must
// not be a way to guess the password.
func (s *Service) ChangePassword(ctx context.Context, actor Actor, current, next, keepRefresh string) error {
	acc, err := getAccount(ctx, s.pool, actor.ID)
	if err != nil {
		return err
	}
	if acc.DisabledAt != nil {
		return errAccountDisabled
	}
	key := throttleKey(acc.Email)
	if err := s.admit(ctx, key); err != nil {
		return err
	}
	ok, err := checkPassword(acc.passwordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		return s.recordFailure(ctx, key, apierr.InvalidFields(apierr.FieldError{Field: "current_password", Detail: "is incorrect"}))
	}
	hash := s.hash(next)
	var keep []byte
	if keepRefresh != "" {
		keep = hashSecret(keepRefresh)
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := setPassword(ctx, tx, acc.ID, hash); err != nil {
			return err
		}
		if err := clearThrottle(ctx, tx, key); err != nil {
			return err
		}
		return revokeAccountSessions(ctx, tx, acc.ID, keep)
	})
	if err != nil {
		return err
	}
	s.log.Info("password changed", "account_id", acc.ID)
	return nil
}

// ForgotPassword queues a reset email if email has an enabled account, and
// does nothing otherwise: the caller cannot tell which.
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
		return enqueueTokenEmail(ctx, tx, resetPassword, acc.ID)
	})
}

// ResetPassword sets a new password with a reset token. The token proves
// the mailbox, so the address becomes verified; every session ends (whoever
// knew the old password is out) and a lock-out is lifted.
func (s *Service) ResetPassword(ctx context.Context, token, next string) error {
	hash := s.hash(next)
	var acc Account
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
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
		if err := clearThrottle(ctx, tx, throttleKey(acc.Email)); err != nil {
			return err
		}
		return revokeAccountSessions(ctx, tx, accountID, nil)
	})
	if err != nil {
		return err
	}
	s.log.Info("password reset", "account_id", acc.ID)
	return nil
}
