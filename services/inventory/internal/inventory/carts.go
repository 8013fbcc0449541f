package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Availability says whether a cart line can be bought as it is.
type Availability string

// The availabilities of a cart line.
const (
	AvailabilityOK           Availability = "ok"           // the quantity can be bought
	AvailabilityInsufficient Availability = "insufficient" // fewer units are available than the quantity
	AvailabilityUnavailable  Availability = "unavailable"  // no unit is available
	AvailabilityArchived     Availability = "archived"     // the product was withdrawn from sale
)

// CartLine is a product in a cart, with the product's current price and
// stock: a cart holds quantities, not prices or stock.
type CartLine struct {
	ProductID uuid.UUID
	SellerID  uuid.UUID
	Name      string
	Quantity  int
	UnitPrice Money
	Available int
	Status    Status
	AddedAt   time.Time
}

// Availability flags the line; a line is never dropped for being
// unbuyable, so the buyer sees what changed.
func (l CartLine) Availability() Availability {
	switch {
	case l.Status == Archived:
		return AvailabilityArchived
	case l.Available <= 0:
		return AvailabilityUnavailable
	case l.Available < l.Quantity:
		return AvailabilityInsufficient
	}
	return AvailabilityOK
}

// Total is the line's quantity at its current unit price.
func (l CartLine) Total() Money {
	return Money{Amount: l.UnitPrice.Amount * int64(l.Quantity), Currency: l.UnitPrice.Currency}
}

// Cart is a user's cart, oldest line first.
type Cart struct {
	Lines []CartLine
}

// Totals sums, per currency (in currency order), the lines that can be
// bought as they are.
func (c Cart) Totals() []Money {
	sums := map[string]int64{}
	for _, l := range c.Lines {
		if l.Availability() == AvailabilityOK {
			sums[l.UnitPrice.Currency] += l.Total().Amount
		}
	}
	out := make([]Money, 0, len(sums))
	for cur, amount := range sums {
		out = append(out, Money{Amount: amount, Currency: cur})
	}
	slices.SortFunc(out, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
	return out
}

// Ready reports whether the cart has lines and every one can be bought.
func (c Cart) Ready() bool {
	for _, l := range c.Lines {
		if l.Availability() != AvailabilityOK {
			return false
		}
	}
	return len(c.Lines) > 0
}

// Cart returns the user's cart (empty when the user never filled one).
func (s *Service) Cart(ctx context.Context, userID uuid.UUID) (Cart, error) {
	return getCart(ctx, s.pool, userID)
}

// SetCartLine sets the quantity of product in the user's cart (0 removes
// the line) and returns the cart. A quantity above what is available is
// accepted (the line is flagged): a cart reserves nothing. An archived
// product cannot be added; a full cart takes no new product.
func (s *Service) SetCartLine(ctx context.Context, userID, productID uuid.UUID, quantity int) (Cart, error) {
	if quantity == 0 {
		if err := s.RemoveCartLine(ctx, userID, productID); err != nil {
			return Cart{}, err
		}
		return s.Cart(ctx, userID)
	}
	var cart Cart
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var status Status
		err := tx.QueryRow(ctx, selectProductStatusSQL, productID).Scan(&status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errProductNotFound(productID)
		case err != nil:
			return fmt.Errorf("set cart line: %w", err)
		case status == Archived:
			return errArchived(productID)
		}
		if _, err := tx.Exec(ctx, lockCartSQL, userID); err != nil {
			return fmt.Errorf("lock cart: %w", err)
		}
		tag, err := tx.Exec(ctx, upsertCartLineSQL, userID, productID, quantity, MaxCartLines)
		if err != nil {
			return fmt.Errorf("set cart line: %w", constraints.Map(err))
		}
		if tag.RowsAffected() == 0 {
			return apierr.WithCode(apierr.Conflict, CodeCartFull,
				fmt.Errorf("the cart already holds %d products; remove one first", MaxCartLines))
		}
		cart, err = getCart(ctx, tx, userID)
		return err
	})
	return cart, err
}

// RemoveCartLine takes product out of the user's cart; removing a product
// that is not there is not an error.
func (s *Service) RemoveCartLine(ctx context.Context, userID, productID uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, deleteCartLineSQL, userID, productID); err != nil {
		return fmt.Errorf("remove cart line: %w", err)
	}
	return nil
}

// RemoveCheckedOut takes the lines order bought out of the user's cart,
// once per order: each line's quantity drops by the quantity bought, and a
// line left with nothing is removed, so a line the buyer added or raised
// while the checkout ran keeps the difference, and a retry (the live
// checkout and the recovery loop may both ask) removes nothing more. It
// reports whether this call applied.
func (s *Service) RemoveCheckedOut(ctx context.Context, userID, orderID uuid.UUID, lines []Line) (bool, error) {
	applied := false
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockCartSQL, userID); err != nil {
			return fmt.Errorf("lock cart: %w", err)
		}
		tag, err := tx.Exec(ctx, insertCartCheckoutSQL, orderID, userID)
		if err != nil {
			return fmt.Errorf("mark checkout %s: %w", orderID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // done before
		}
		applied = true
		// Delete first, then lower: lowering first would leave a line
		// that the delete's condition then matches.
		for _, l := range lines {
			if _, err := tx.Exec(ctx, deleteBoughtLineSQL, userID, l.ProductID, l.Quantity); err != nil {
				return fmt.Errorf("remove bought line %s: %w", l.ProductID, err)
			}
			if _, err := tx.Exec(ctx, lowerCartLineSQL, userID, l.ProductID, l.Quantity); err != nil {
				return fmt.Errorf("remove bought line %s: %w", l.ProductID, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if applied {
		logging.Of(ctx, s.log).Info("checked-out lines left the cart", "order_id", orderID, "lines", len(lines))
	}
	return applied, nil
}

// ClearCart empties the user's cart.
func (s *Service) ClearCart(ctx context.Context, userID uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, clearCartSQL, userID); err != nil {
		return fmt.Errorf("clear cart: %w", err)
	}
	return nil
}
