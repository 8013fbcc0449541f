package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// SavedAddress is an address of a user's address book.
type SavedAddress struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	Address   Address
	CreatedAt time.Time
}

// Addresses returns user's address book, oldest first. The book is
// bounded by Config.MaxAddresses, so it comes whole.
func (s *Service) Addresses(ctx context.Context, user uuid.UUID) ([]SavedAddress, error) {
	return listAddresses(ctx, s.pool, user)
}

// AddAddress saves a validated, normalized address in user's book; a full
// book is a 409.
func (s *Service) AddAddress(ctx context.Context, user uuid.UUID, a Address) (SavedAddress, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return SavedAddress{}, err
	}
	var saved SavedAddress
	// Serializable: two concurrent adds to a book one short of full must
	// not both see room. The count is not a constraint the database could
	// check; a conflicting transaction is retried by pgdb.
	err = pgdb.InSerializableTx(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := countAddresses(ctx, tx, user)
		if err != nil {
			return err
		}
		if n >= s.cfg.MaxAddresses {
			return apierr.WithCode(apierr.Conflict, "address-book-full", fmt.Errorf(
				"the address book holds %d addresses, the most it may; delete one first", n))
		}
		saved, err = insertAddress(ctx, tx, id, user, a)
		return err
	})
	return saved, err
}

// DeleteAddress deletes address id from user's book. Another user's
// address is NotFound.
func (s *Service) DeleteAddress(ctx context.Context, user, id uuid.UUID) error {
	return deleteAddress(ctx, s.pool, user, id)
}
