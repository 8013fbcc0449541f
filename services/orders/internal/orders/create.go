package orders

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// NewOrder is what the checkout asks to create, validated and normalized
// by the HTTP boundary. Line totals are left to Create.
type NewOrder struct {
	// IdempotencyKey is the buyer's checkout key.
	IdempotencyKey string
	BuyerID        uuid.UUID
	BuyerEmail     string
	Address        Address
	Currency       string
	Lines          []Line
	// ExpectedTotal, when set, is the total the caller computed; Create
	// refuses the order when its own differs.
	ExpectedTotal *Money
}

// Totals sets each line's total and returns the order's, in integer minor
// units. A product of price and quantity, or a sum, beyond int64 is an
// error rather than a wrapped-around amount.
func Totals(lines []Line) (int64, error) {
	var total int64
	for i := range lines {
		l := &lines[i]
		if l.UnitPrice < 0 || l.Quantity < 1 {
			return 0, apierr.InvalidFields(apierr.FieldError{Field: fmt.Sprintf("lines[%d]", i), Detail: "needs a unit_price ≥ 0 and a quantity ≥ 1"})
		}
		if l.UnitPrice > math.MaxInt64/int64(l.Quantity) {
			return 0, apierr.InvalidFields(apierr.FieldError{Field: fmt.Sprintf("lines[%d].unit_price", i), Detail: "times quantity is beyond the largest amount (2^63-1 minor units)"})
		}
		l.Total = l.UnitPrice * int64(l.Quantity)
		if total > math.MaxInt64-l.Total {
			return 0, apierr.InvalidFields(apierr.FieldError{Field: "lines", Detail: "the order total is beyond the largest amount (2^63-1 minor units)"})
		}
		total += l.Total
	}
	return total, nil
}

// Create creates a pending order for a checkout, or returns the order the
// same checkout key created before (created is false then). The key reused
// for another content is a 409; an expected total that differs from the
// computed one is a 422.
func (s *Service) Create(ctx context.Context, in NewOrder) (o Order, created bool, err error) {
	lines := append([]Line(nil), in.Lines...)
	total, err := Totals(lines)
	if err != nil {
		return Order{}, false, err
	}
	if e := in.ExpectedTotal; e != nil && (e.Amount != total || e.Currency != in.Currency) {
		return Order{}, false, apierr.WithCode(apierr.Unprocessable, "total-mismatch", fmt.Errorf(
			"expected_total %s differs from the total of the lines, %s (the sum of unit_price × quantity); the order was not created",
			formatMoney(e.Amount, e.Currency), formatMoney(total, in.Currency)))
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, false, err
	}
	o = Order{
		ID:          id,
		BuyerID:     in.BuyerID,
		BuyerEmail:  in.BuyerEmail,
		Status:      Pending,
		Address:     in.Address,
		Currency:    in.Currency,
		Total:       total,
		Lines:       lines,
		fingerprint: in.fingerprint(),
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		created, err = insertOrder(ctx, tx, &o, in.IdempotencyKey)
		if err != nil || !created {
			return err
		}
		if err := insertLines(ctx, tx, o.ID, o.Lines); err != nil {
			return err
		}
		return insertTransition(ctx, tx, o.ID, "", Pending, "")
	})
	if err != nil {
		return Order{}, false, err
	}
	if created {
		logging.Of(ctx, s.log).Info("order created", "order_id", o.ID, "buyer_id", o.BuyerID, "total", o.Total, "currency", o.Currency, "lines", len(o.Lines))
		s.entered.WithLabelValues(string(Pending)).Inc()
		o, err = s.Get(ctx, o.ID)
		return o, true, err
	}
	// The key was used before: by this checkout (a retry), or for another
	// content. The row is committed: the insert waited for it.
	prev, err := getOrderByKey(ctx, s.pool, in.BuyerID, in.IdempotencyKey)
	if err != nil {
		return Order{}, false, err
	}
	if string(prev.fingerprint) != string(o.fingerprint) {
		return Order{}, false, apierr.WithCode(apierr.Conflict, "idempotency-key-reused", fmt.Errorf(
			"Idempotency-Key %q already created order %s with other content; use a new key for a new checkout", in.IdempotencyKey, prev.ID))
	}
	return prev, false, nil
}

// fingerprint is the SHA-256 of the canonical form of what the order is
// made of: the same checkout sent twice has the same fingerprint whatever
// the JSON's spacing or key order. The key itself and expected_total (a
// check, not content) are left out.
func (in NewOrder) fingerprint() []byte {
	type line struct {
		ProductID   uuid.UUID `json:"product_id"`
		SellerID    uuid.UUID `json:"seller_id"`
		SellerEmail string    `json:"seller_email"`
		Name        string    `json:"name"`
		UnitPrice   int64     `json:"unit_price"`
		Quantity    int       `json:"quantity"`
	}
	canon := struct {
		Version    int       `json:"v"`
		BuyerID    uuid.UUID `json:"buyer_id"`
		BuyerEmail string    `json:"buyer_email"`
		Address    Address   `json:"address"`
		Currency   string    `json:"currency"`
		Lines      []line    `json:"lines"`
	}{Version: 1, BuyerID: in.BuyerID, BuyerEmail: in.BuyerEmail, Address: in.Address, Currency: in.Currency}
	for _, l := range in.Lines {
		canon.Lines = append(canon.Lines, line{l.ProductID, l.SellerID, l.SellerEmail, l.Name, l.UnitPrice, l.Quantity})
	}
	b, _ := json.Marshal(canon) // strings, numbers and UUIDs always marshal
	sum := sha256.Sum256(b)
	return sum[:]
}
