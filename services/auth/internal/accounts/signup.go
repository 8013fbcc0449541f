package accounts

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Signup is a request for a new account, validated and normalized.
type Signup struct {
	Email       string
	Password    string
	DisplayName string
	Role        Role
}

// Signup creates an unverified account and queues its verification email
// in the same transaction, within the address's email quota. When the address already has an account,
// nothing is created and its owner is emailed instead; the caller cannot
// tell the two apart (same answer, and the password is hashed either way so
// the time is the same too).
func (s *Service) Signup(ctx context.Context, in Signup) error {
	if in.Role != Buyer && in.Role != Seller {
		return apierr.InvalidFields(apierr.FieldError{Field: "role", Detail: "must be buyer or seller"})
	}
	ctx, leave, err := s.credential(ctx)
	if err != nil {
		return err
	}
	defer leave()
	hash, err := s.hash(ctx, in.Password)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		created, err := insertAccount(ctx, tx, Account{ID: id, Email: in.Email, DisplayName: in.DisplayName, Role: in.Role, passwordHash: hash})
		if err != nil {
			return err
		}
		if created {
			logging.Of(ctx, s.log).Info("account created", "account_id", id, "role", in.Role)
		}
		if ok, err := s.takeEmailQuota(ctx, tx, in.Email); !ok || err != nil {
			return err
		}
		if !created {
			_, err := mail.Enqueue(ctx, tx, signupAttemptEmail(in.Email))
			return err
		}
		return enqueueTokenEmail(ctx, tx, verifyEmail, id)
	})
}

// VerifyEmail spends a verification token and marks its account's address
// verified.
func (s *Service) VerifyEmail(ctx context.Context, token string) (Account, error) {
	var acc Account
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		accountID, err := spendEmailToken(ctx, tx, hashSecret(token), verifyEmail)
		if err != nil {
			return err
		}
		acc, err = markVerified(ctx, tx, accountID)
		return err
	})
	return acc, err
}

// ResendVerification queues a new verification email if email has an
// unverified, enabled account and its email quota allows, and does nothing
// otherwise: the caller cannot tell which.
func (s *Service) ResendVerification(ctx context.Context, email string) error {
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		acc, err := getAccountByEmail(ctx, tx, email)
		if apierr.Is(err, apierr.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if acc.VerifiedAt != nil || acc.DisabledAt != nil {
			return nil
		}
		if ok, err := s.takeEmailQuota(ctx, tx, acc.Email); !ok || err != nil {
			return err
		}
		return enqueueTokenEmail(ctx, tx, verifyEmail, acc.ID)
	})
}
