package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// NewProduct is what a seller puts on sale.
type NewProduct struct {
	Name        string
	Description string
	Price       Money
	OnHand      int
}

// CreateProduct puts a product of the seller on sale.
func (s *Service) CreateProduct(ctx context.Context, sellerID uuid.UUID, np NewProduct) (Product, error) {
	id, err := uuid.NewV7() // time-ordered: friendlier to the primary key index
	if err != nil {
		return Product{}, err
	}
	p, err := scanProduct(s.pool.QueryRow(ctx, insertProductSQL,
		id, sellerID, np.Name, np.Description, np.Price.Amount, np.Price.Currency, np.OnHand))
	if err != nil {
		return Product{}, fmt.Errorf("create product: %w", constraints.Map(err))
	}
	logging.Of(ctx, s.log).Debug("product created", "product_id", p.ID, "seller_id", sellerID)
	return p, nil
}

// Product returns product id, archived or not: anyone may read it.
func (s *Service) Product(ctx context.Context, id uuid.UUID) (Product, error) {
	return getProduct(ctx, s.pool, id)
}

// ProductsByID returns the products of ids that exist, in the order of ids
// (each once), archived ones included.
func (s *Service) ProductsByID(ctx context.Context, ids []uuid.UUID) ([]Product, error) {
	found, err := collectProducts(s.pool.Query(ctx, selectProductsByIDSQL, ids))
	if err != nil {
		return nil, fmt.Errorf("products by id: %w", err)
	}
	byID := make(map[uuid.UUID]Product, len(found))
	for _, p := range found {
		byID[p.ID] = p
	}
	out := make([]Product, 0, len(found))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
			delete(byID, id)
		}
	}
	return out, nil
}

// SellerProducts returns a page of the seller's own products, archived
// included, newest first, and the cursor of the next page (nil on the
// last).
func (s *Service) SellerProducts(ctx context.Context, sellerID uuid.UUID, limit int, after *Cursor) ([]Product, *Cursor, error) {
	var (
		afterTime *time.Time
		afterID   uuid.UUID
	)
	if after != nil {
		afterTime, afterID = &after.CreatedAt, after.ID
	}
	ps, err := collectProducts(s.pool.Query(ctx, selectSellerProductsSQL, sellerID, afterTime, afterID, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("seller products: %w", err)
	}
	if len(ps) <= limit {
		return ps, nil, nil
	}
	ps = ps[:limit]
	last := ps[len(ps)-1]
	return ps, &Cursor{Sort: SortNewest, CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// Patch is a change to a product's description; nil fields are left alone.
type Patch struct {
	Name        *string
	Description *string
	Price       *Money
}

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool { return p.Name == nil && p.Description == nil && p.Price == nil }

// UpdateProduct applies p to the seller's product id if it is still at
// version ifVersion (nil: whatever its version), and returns it at its new
// version. A stale version is PreconditionFailed; another seller's product
// is NotFound; an archived one is Conflict.
func (s *Service) UpdateProduct(ctx context.Context, sellerID, id uuid.UUID, ifVersion *int, p Patch) (Product, error) {
	var amount *int64
	var currency *string
	if p.Price != nil {
		amount, currency = &p.Price.Amount, &p.Price.Currency
	}
	updated, ok, err := updateOwnProduct(ctx, s.pool, updateProductSQL, id, sellerID, p.Name, p.Description, amount, currency, ifVersion)
	if err != nil {
		return Product{}, fmt.Errorf("update product %s: %w", id, err)
	}
	if ok {
		return updated, nil
	}
	// Nothing matched: read the product only to say why.
	cur, err := getOwnProduct(ctx, s.pool, sellerID, id)
	switch {
	case err != nil:
		return Product{}, err
	case cur.Status == Archived:
		return Product{}, errArchived(id)
	case ifVersion != nil && cur.Version != *ifVersion:
		return Product{}, apierr.Errorf(apierr.PreconditionFailed,
			"product %s changed since version %d (it is at version %d): read it again and reapply your change", id, *ifVersion, cur.Version)
	default:
		// It changed between the UPDATE and this read; the client retries.
		return Product{}, apierr.Errorf(apierr.PreconditionFailed, "product %s changed while it was being updated; read it again", id)
	}
}

// ArchiveProduct withdraws the seller's product id from sale; archiving an
// archived product returns it unchanged.
func (s *Service) ArchiveProduct(ctx context.Context, sellerID, id uuid.UUID) (Product, error) {
	p, ok, err := updateOwnProduct(ctx, s.pool, archiveProductSQL, id, sellerID)
	if err != nil {
		return Product{}, fmt.Errorf("archive product %s: %w", id, err)
	}
	if ok {
		logging.Of(ctx, s.log).Info("product archived", "product_id", id, "seller_id", sellerID)
		return p, nil
	}
	return getOwnProduct(ctx, s.pool, sellerID, id)
}

// SetStock sets the units on hand of the seller's product id, which may not
// fall below the units reserved.
func (s *Service) SetStock(ctx context.Context, sellerID, id uuid.UUID, onHand int) (Product, error) {
	p, ok, err := updateOwnProduct(ctx, s.pool, setStockSQL, id, sellerID, onHand)
	if err != nil {
		return Product{}, fmt.Errorf("set stock of %s: %w", id, err)
	}
	if ok {
		return p, nil
	}
	cur, err := getOwnProduct(ctx, s.pool, sellerID, id)
	if err != nil {
		return Product{}, err
	}
	return Product{}, errBelowReserved("on_hand", cur.Reserved)
}

// AdjustStock adds delta (negative: removes) to the units on hand of the
// seller's product id, atomically: concurrent adjustments all count.
func (s *Service) AdjustStock(ctx context.Context, sellerID, id uuid.UUID, delta int) (Product, error) {
	p, ok, err := updateOwnProduct(ctx, s.pool, adjustStockSQL, id, sellerID, delta)
	if err != nil {
		return Product{}, fmt.Errorf("adjust stock of %s: %w", id, err)
	}
	if ok {
		return p, nil
	}
	cur, err := getOwnProduct(ctx, s.pool, sellerID, id)
	if err != nil {
		return Product{}, err
	}
	if cur.OnHand+delta > MaxOnHand {
		return Product{}, apierr.InvalidFields(apierr.FieldError{Field: "delta", Detail: fmt.Sprintf("would take on_hand above %d", MaxOnHand)})
	}
	return Product{}, errBelowReserved("delta", cur.Reserved)
}

func errArchived(id uuid.UUID) error {
	return apierr.WithCode(apierr.Conflict, CodeProductArchived, fmt.Errorf("product %s is archived", id))
}

func errBelowReserved(field string, reserved int) error {
	return &apierr.Error{
		Kind:   apierr.Conflict,
		Code:   CodeBelowReserved,
		Err:    fmt.Errorf("on_hand cannot fall below the %d units reserved for orders being checked out", reserved),
		Fields: []apierr.FieldError{{Field: field, Detail: fmt.Sprintf("would leave on_hand below the %d units reserved", reserved)}},
	}
}
