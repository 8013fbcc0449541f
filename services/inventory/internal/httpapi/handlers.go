// Package httpapi is the inventory service's HTTP boundary: the routes and
// types generated from openapi/inventory.yaml (api.gen.go), and the
// handlers that decode and validate requests into the inventory domain's
// values and write its answers. Each generated ServerInterface method is a
// one-line adapter onto a method that returns an error; httpx turns errors
// into problem+json.
package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// API implements the generated ServerInterface.
type API struct {
	inv *inventory.Service
}

var _ ServerInterface = (*API)(nil)

// New returns the service's routes. verifier authenticates bearer tokens on
// every route; handlers decide whether a caller is needed (the catalogue
// and the /internal routes need none).
func New(svc *inventory.Service, verifier *authn.Verifier) http.Handler {
	r := httpx.NewRouter()
	h := HandlerWithOptions(&API{inv: svc}, GorillaServerOptions{
		BaseRouter:       r,
		ErrorHandlerFunc: httpx.ParamError,
	})
	return verifier.Middleware(h)
}

// The ServerInterface adapters.

func (a *API) ListProducts(w http.ResponseWriter, r *http.Request, p ListProductsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listProducts(w, r, p) })
}
func (a *API) GetProduct(w http.ResponseWriter, r *http.Request, id ProductID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getProduct(w, r, id) })
}
func (a *API) ListMyProducts(w http.ResponseWriter, r *http.Request, p ListMyProductsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMyProducts(w, r, p) })
}
func (a *API) CreateProduct(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.createProduct)
}
func (a *API) UpdateProduct(w http.ResponseWriter, r *http.Request, id ProductID, p UpdateProductParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.updateProduct(w, r, id, p) })
}
func (a *API) ArchiveProduct(w http.ResponseWriter, r *http.Request, id ProductID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.archiveProduct(w, r, id) })
}
func (a *API) SetStock(w http.ResponseWriter, r *http.Request, id ProductID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.setStock(w, r, id) })
}
func (a *API) AdjustStock(w http.ResponseWriter, r *http.Request, id ProductID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.adjustStock(w, r, id) })
}
func (a *API) GetCart(w http.ResponseWriter, r *http.Request)   { httpx.Serve(w, r, a.getCart) }
func (a *API) ClearCart(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.clearCart) }
func (a *API) SetCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.setCartLine(w, r, productID) })
}
func (a *API) RemoveCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.removeCartLine(w, r, productID) })
}
func (a *API) GetProductsByIds(w http.ResponseWriter, r *http.Request, p GetProductsByIdsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getProductsByIDs(w, r, p) })
}
func (a *API) ReserveStock(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.reserveStock) }
func (a *API) RemoveCheckedOutLines(w http.ResponseWriter, r *http.Request, userID openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.removeCheckedOutLines(w, r, userID) })
}
func (a *API) ListReservations(w http.ResponseWriter, r *http.Request, p ListReservationsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listReservations(w, r, p) })
}
func (a *API) GetReservation(w http.ResponseWriter, r *http.Request, orderID OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getReservation(w, r, orderID) })
}
func (a *API) CommitReservation(w http.ResponseWriter, r *http.Request, orderID OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.commitReservation(w, r, orderID) })
}
func (a *API) ReleaseReservation(w http.ResponseWriter, r *http.Request, orderID OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.releaseReservation(w, r, orderID) })
}
func (a *API) RestockReservation(w http.ResponseWriter, r *http.Request, orderID OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.restockReservation(w, r, orderID) })
}

// Pagination limits.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// Catalogue.

func (a *API) listProducts(w http.ResponseWriter, r *http.Request, p ListProductsParams) error {
	q := inventory.Query{SellerID: p.SellerId, MinPrice: p.MinPrice, MaxPrice: p.MaxPrice}
	var f fields
	if p.Q != nil {
		q.Text = strings.TrimSpace(*p.Q)
		if utf8.RuneCountInString(q.Text) > inventory.MaxQueryLen || !utf8.ValidString(q.Text) {
			f.check("q", fmt.Sprintf("must be valid UTF-8 of at most %d characters", inventory.MaxQueryLen))
		}
	}
	if p.MinPrice != nil && *p.MinPrice < 0 {
		f.check("min_price", "must not be negative")
	}
	if p.MaxPrice != nil && *p.MaxPrice < 0 {
		f.check("max_price", "must not be negative")
	}
	if p.MinPrice != nil && p.MaxPrice != nil && *p.MaxPrice < *p.MinPrice {
		f.check("max_price", "must be at least min_price")
	}
	if p.Currency != nil {
		q.Currency = *p.Currency
		f.check("currency", validate.Currency(q.Currency))
	}
	if p.InStock != nil {
		q.InStock = *p.InStock
	}
	q.Sort = inventory.SortNewest
	if q.Text != "" {
		q.Sort = inventory.SortRelevance
	}
	if p.Sort != nil {
		q.Sort = inventory.Sort(*p.Sort)
		switch {
		case !q.Sort.Valid():
			f.check("sort", "must be relevance, newest, price_asc or price_desc")
		case q.Sort == inventory.SortRelevance && q.Text == "":
			f.check("sort", "relevance needs a search text in q")
		}
	}
	q.Limit = f.limit(p.Limit)
	if p.PageToken != nil && *p.PageToken != "" {
		after, err := decodeCursor(*p.PageToken, fingerprint(q))
		switch {
		case err != nil:
			f.check("page_token", err.Error())
		case after.Sort != q.Sort:
			f.check("page_token", "belongs to another sort order; start again from the first page")
		}
		q.After = after
	}
	if err := f.err(); err != nil {
		return err
	}
	products, next, err := a.inv.Search(r.Context(), q)
	if err != nil {
		return err
	}
	page := ProductPage{Items: make([]Product, len(products))}
	for i, p := range products {
		page.Items[i] = toProduct(p)
	}
	if next != nil {
		token := encodeCursor(*next, fingerprint(q))
		page.NextPageToken = &token
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	p, err := a.inv.Product(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(p))
	return httpx.WriteJSON(w, http.StatusOK, toProduct(p))
}

// maxBatchIDs bounds GET /internal/products.
const maxBatchIDs = 100

func (a *API) getProductsByIDs(w http.ResponseWriter, r *http.Request, p GetProductsByIdsParams) error {
	var f fields
	switch {
	case len(p.Ids) == 0:
		f.check("ids", "is required")
	case len(p.Ids) > maxBatchIDs:
		f.check("ids", fmt.Sprintf("must list at most %d ids", maxBatchIDs))
	}
	if err := f.err(); err != nil {
		return err
	}
	products, err := a.inv.ProductsByID(r.Context(), p.Ids)
	if err != nil {
		return err
	}
	list := ProductList{Items: make([]Product, len(products))}
	for i, p := range products {
		list.Items[i] = toProduct(p)
	}
	return httpx.WriteJSON(w, http.StatusOK, list)
}

// Seller products.

func (a *API) listMyProducts(w http.ResponseWriter, r *http.Request, p ListMyProductsParams) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var f fields
	limit := f.limit(p.Limit)
	var after *inventory.Cursor
	if p.PageToken != nil && *p.PageToken != "" {
		if after, err = decodeCursor(*p.PageToken, sellerFingerprint); err != nil {
			f.check("page_token", err.Error())
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	products, next, err := a.inv.SellerProducts(r.Context(), seller, limit, after)
	if err != nil {
		return err
	}
	page := SellerProductPage{Items: make([]SellerProduct, len(products))}
	for i, p := range products {
		page.Items[i] = toSellerProduct(p)
	}
	if next != nil {
		token := encodeCursor(*next, sellerFingerprint)
		page.NextPageToken = &token
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var req NewProduct
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	np := inventory.NewProduct{
		Name:  inventory.NormalizeName(req.Name),
		Price: inventory.Money{Amount: req.Price.Amount, Currency: req.Price.Currency},
	}
	if req.Description != nil {
		np.Description = inventory.NormalizeDescription(*req.Description)
	}
	if req.OnHand != nil {
		np.OnHand = *req.OnHand
	}
	var f fields
	f.check("name", inventory.CheckName(np.Name))
	f.check("description", inventory.CheckDescription(np.Description))
	f.checkPrice("price", np.Price)
	f.check("on_hand", inventory.CheckOnHand(np.OnHand))
	if err := f.err(); err != nil {
		return err
	}
	p, err := a.inv.CreateProduct(r.Context(), seller, np)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/products/"+p.ID.String())
	return writeSellerProduct(w, http.StatusCreated, p)
}

func (a *API) updateProduct(w http.ResponseWriter, r *http.Request, id uuid.UUID, params UpdateProductParams) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	version, err := ifMatch(params.IfMatch)
	if err != nil {
		return err
	}
	var req ProductPatch
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var (
		patch inventory.Patch
		f     fields
	)
	if req.Name != nil {
		name := inventory.NormalizeName(*req.Name)
		f.check("name", inventory.CheckName(name))
		patch.Name = &name
	}
	if req.Description != nil {
		d := inventory.NormalizeDescription(*req.Description)
		f.check("description", inventory.CheckDescription(d))
		patch.Description = &d
	}
	if req.Price != nil {
		price := inventory.Money{Amount: req.Price.Amount, Currency: req.Price.Currency}
		f.checkPrice("price", price)
		patch.Price = &price
	}
	if err := f.err(); err != nil {
		return err
	}
	if patch.Empty() {
		return apierr.Errorf(apierr.Invalid, "the patch changes nothing; send name, description or price")
	}
	p, err := a.inv.UpdateProduct(r.Context(), seller, id, version, patch)
	if err != nil {
		return err
	}
	return writeSellerProduct(w, http.StatusOK, p)
}

func (a *API) archiveProduct(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	p, err := a.inv.ArchiveProduct(r.Context(), seller, id)
	if err != nil {
		return err
	}
	return writeSellerProduct(w, http.StatusOK, p)
}

func (a *API) setStock(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var req StockLevel
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	f.check("on_hand", inventory.CheckOnHand(req.OnHand))
	if err := f.err(); err != nil {
		return err
	}
	p, err := a.inv.SetStock(r.Context(), seller, id, req.OnHand)
	if err != nil {
		return err
	}
	return writeSellerProduct(w, http.StatusOK, p)
}

func (a *API) adjustStock(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var req StockAdjustment
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	f.check("delta", inventory.CheckDelta(req.Delta))
	if err := f.err(); err != nil {
		return err
	}
	p, err := a.inv.AdjustStock(r.Context(), seller, id, req.Delta)
	if err != nil {
		return err
	}
	return writeSellerProduct(w, http.StatusOK, p)
}

// Cart.

func (a *API) getCart(w http.ResponseWriter, r *http.Request) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	cart, err := a.inv.Cart(r.Context(), user)
	if err != nil {
		return err
	}
	return writeCart(w, cart)
}

func (a *API) setCartLine(w http.ResponseWriter, r *http.Request, productID uuid.UUID) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	var req CartLineQuantity
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	f.check("quantity", inventory.CheckCartQuantity(req.Quantity))
	if err := f.err(); err != nil {
		return err
	}
	cart, err := a.inv.SetCartLine(r.Context(), user, productID, req.Quantity)
	if err != nil {
		return err
	}
	return writeCart(w, cart)
}

func (a *API) removeCartLine(w http.ResponseWriter, r *http.Request, productID uuid.UUID) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	if err := a.inv.RemoveCartLine(r.Context(), user, productID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) clearCart(w http.ResponseWriter, r *http.Request) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	if err := a.inv.ClearCart(r.Context(), user); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Reservations. No caller is required: /internal is not routed by the edge
// (see the README's trust model).

func (a *API) reserveStock(w http.ResponseWriter, r *http.Request) error {
	var req ReservationRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	in := inventory.ReserveRequest{OrderID: req.OrderId, Lines: orderLines(&f, req.OrderId, req.Lines, true)}
	if req.TtlSeconds != nil {
		maxSecs := int(inventory.MaxReservationTTL / time.Second)
		if *req.TtlSeconds < 1 || *req.TtlSeconds > maxSecs {
			f.check("ttl_seconds", fmt.Sprintf("must be between 1 and %d", maxSecs))
		}
		in.TTL = time.Duration(*req.TtlSeconds) * time.Second
	}
	if err := f.err(); err != nil {
		return err
	}
	res, created, err := a.inv.Reserve(r.Context(), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return httpx.WriteJSON(w, status, toReservation(res))
}

// listReservations answers the reservations of some orders (order_id), or
// a page of the walk of those created since a time (since); exactly one of
// the two.
func (a *API) listReservations(w http.ResponseWriter, r *http.Request, p ListReservationsParams) error {
	var f fields
	switch {
	case p.OrderId != nil && p.Since != nil:
		f.check("since", "cannot be combined with order_id")
	case p.OrderId == nil && p.Since == nil:
		f.check("order_id", "is required, or since")
	case p.OrderId != nil:
		if p.Limit != nil || p.PageToken != nil {
			f.check("order_id", "is not paged: limit and page_token go with since")
		}
		if n := len(*p.OrderId); n == 0 || n > inventory.MaxOrdersPerLookup {
			f.check("order_id", fmt.Sprintf("must name 1 to %d orders", inventory.MaxOrdersPerLookup))
		}
		if err := f.err(); err != nil {
			return err
		}
		list, err := a.inv.ReservationsOf(r.Context(), *p.OrderId)
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, ReservationPage{Items: toReservations(list)})
	}
	limit := f.limit(p.Limit)
	var after *inventory.ReservationCursor
	if p.PageToken != nil && *p.PageToken != "" {
		at, id, err := httpx.DecodePageToken(*p.PageToken)
		if err != nil {
			f.check("page_token", "is not a next_page_token of this list")
		}
		after = &inventory.ReservationCursor{CreatedAt: at, OrderID: id}
	}
	if err := f.err(); err != nil {
		return err
	}
	list, next, err := a.inv.ReservationsSince(r.Context(), *p.Since, after, limit)
	if err != nil {
		return err
	}
	page := ReservationPage{Items: toReservations(list)}
	if next != nil {
		token := httpx.EncodePageToken(next.CreatedAt, next.OrderID)
		page.NextPageToken = &token
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

// orderLines checks an order's id and lines as a reservation and a
// checkout's cart removal both take them; unique also refuses a product
// in two lines (a reservation must hold one line per product).
func orderLines(f *fields, orderID uuid.UUID, in []ReservationLine, unique bool) []inventory.Line {
	if orderID == uuid.Nil {
		f.check("order_id", "is required")
	}
	switch {
	case len(in) == 0:
		f.check("lines", "must hold at least one line")
	case len(in) > inventory.MaxReservationLines:
		f.check("lines", fmt.Sprintf("must hold at most %d lines", inventory.MaxReservationLines))
	}
	lines := make([]inventory.Line, len(in))
	seen := make(map[uuid.UUID]bool, len(in))
	for i, l := range in {
		switch {
		case l.ProductId == uuid.Nil:
			f.check(fmt.Sprintf("lines[%d].product_id", i), "is required")
		case unique && seen[l.ProductId]:
			f.check(fmt.Sprintf("lines[%d].product_id", i), "appears in another line; send one line per product")
		}
		seen[l.ProductId] = true
		f.check(fmt.Sprintf("lines[%d].quantity", i), inventory.CheckReserveQuantity(l.Quantity))
		lines[i] = inventory.Line{ProductID: l.ProductId, Quantity: l.Quantity}
	}
	return lines
}

// removeCheckedOutLines takes a confirmed order's lines out of its
// buyer's cart, once per order (internal: the aggregator's saga, live or
// recovering, which has no buyer token then).
func (a *API) removeCheckedOutLines(w http.ResponseWriter, r *http.Request, userID uuid.UUID) error {
	var req CheckedOutLines
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	lines := orderLines(&f, req.OrderId, req.Lines, false)
	if err := f.err(); err != nil {
		return err
	}
	if _, err := a.inv.RemoveCheckedOut(r.Context(), userID, req.OrderId, lines); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func toReservations(list []inventory.Reservation) []Reservation {
	out := make([]Reservation, len(list))
	for i, res := range list {
		out[i] = toReservation(res)
	}
	return out
}

func (a *API) getReservation(w http.ResponseWriter, r *http.Request, orderID uuid.UUID) error {
	res, err := a.inv.Reservation(r.Context(), orderID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toReservation(res))
}

func (a *API) commitReservation(w http.ResponseWriter, r *http.Request, orderID uuid.UUID) error {
	res, err := a.inv.Commit(r.Context(), orderID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toReservation(res))
}

func (a *API) releaseReservation(w http.ResponseWriter, r *http.Request, orderID uuid.UUID) error {
	res, err := a.inv.Release(r.Context(), orderID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toReservation(res))
}

func (a *API) restockReservation(w http.ResponseWriter, r *http.Request, orderID uuid.UUID) error {
	res, err := a.inv.Restock(r.Context(), orderID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toReservation(res))
}

// Optimistic concurrency.

// etag is a product's entity tag: its version, quoted (a strong tag).
func etag(p inventory.Product) string { return `"` + strconv.Itoa(p.Version) + `"` }

// ifMatch reads the If-Match header of a product update: the version the
// client saw, or nil for "*" (any version). A missing header is refused: an
// update without it would silently overwrite a change the client never saw.
func ifMatch(h *string) (*int, error) {
	v := ""
	if h != nil {
		v = strings.TrimSpace(*h)
	}
	switch {
	case v == "":
		return nil, &apierr.Error{
			Kind:   apierr.Invalid,
			Code:   "precondition-required",
			Err:    errors.New(`If-Match is required: send the ETag of the product as you last read it (or * to overwrite whatever is there)`),
			Fields: []apierr.FieldError{{Field: "If-Match", Detail: "is required"}},
		}
	case v == "*":
		return nil, nil
	case strings.HasPrefix(v, "W/"):
		// If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never
		// matches.
		return nil, apierr.Errorf(apierr.PreconditionFailed, "If-Match %s is a weak entity tag, which never matches; send the ETag as it was given", v)
	}
	n, err := strconv.Atoi(strings.Trim(v, `"`))
	if err != nil || n < 1 || len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, apierr.InvalidFields(apierr.FieldError{Field: "If-Match", Detail: `must be one entity tag as given in ETag (like "3"), or *`})
	}
	return &n, nil
}

// Validation.

// fields collects the field errors of a request, to report them all at
// once, with the checks this API repeats.
type fields struct{ validate.Errors }

// check records detail against field, unless detail is "" (no fault).
func (f *fields) check(field, detail string) { f.Check(field, detail) }

// checkPrice checks a price with the shared rules, which bound what a
// cart of such prices can add up to (validate.MaxAmount).
func (f *fields) checkPrice(field string, m inventory.Money) {
	f.check(field+".amount", validate.Price(m.Amount))
	f.check(field+".currency", validate.Currency(m.Currency))
}

// limit checks a page size and returns it, or the default when absent.
func (f *fields) limit(p *int) int {
	if p == nil {
		return defaultLimit
	}
	if *p < 1 || *p > maxLimit {
		f.check("limit", fmt.Sprintf("must be between 1 and %d", maxLimit))
	}
	return *p
}

func (f *fields) err() error { return f.Err() }

// Answers.

func writeSellerProduct(w http.ResponseWriter, status int, p inventory.Product) error {
	w.Header().Set("ETag", etag(p))
	return httpx.WriteJSON(w, status, toSellerProduct(p))
}

func writeCart(w http.ResponseWriter, c inventory.Cart) error {
	out := Cart{Lines: make([]CartLine, len(c.Lines)), Ready: c.Ready()}
	for i, l := range c.Lines {
		out.Lines[i] = CartLine{
			ProductId:    l.ProductID,
			SellerId:     l.SellerID,
			Name:         l.Name,
			Quantity:     l.Quantity,
			UnitPrice:    toMoney(l.UnitPrice),
			LineTotal:    toMoney(l.Total()),
			Available:    max(l.Available, 0),
			Availability: Availability(l.Availability()),
			AddedAt:      l.AddedAt.UTC(),
		}
	}
	totals := c.Totals()
	out.Totals = make([]Money, len(totals))
	for i, m := range totals {
		out.Totals[i] = toMoney(m)
	}
	// A cart is personal and changes with every stock movement.
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func toMoney(m inventory.Money) Money { return Money{Amount: m.Amount, Currency: m.Currency} }

func toProduct(p inventory.Product) Product {
	return Product{
		Id:          p.ID,
		SellerId:    p.SellerID,
		Name:        p.Name,
		Description: p.Description,
		Price:       toMoney(p.Price),
		Available:   p.Available(),
		Status:      ProductStatus(p.Status),
		Version:     p.Version,
		CreatedAt:   p.CreatedAt.UTC(),
		UpdatedAt:   p.UpdatedAt.UTC(),
		ArchivedAt:  utc(p.ArchivedAt),
	}
}

func toSellerProduct(p inventory.Product) SellerProduct {
	return SellerProduct{
		Id:          p.ID,
		SellerId:    p.SellerID,
		Name:        p.Name,
		Description: p.Description,
		Price:       toMoney(p.Price),
		Available:   p.Available(),
		OnHand:      p.OnHand,
		Reserved:    p.Reserved,
		Status:      ProductStatus(p.Status),
		Version:     p.Version,
		CreatedAt:   p.CreatedAt.UTC(),
		UpdatedAt:   p.UpdatedAt.UTC(),
		ArchivedAt:  utc(p.ArchivedAt),
	}
}

func toReservation(r inventory.Reservation) Reservation {
	out := Reservation{
		OrderId:     r.OrderID,
		Status:      ReservationStatus(r.Status),
		Lines:       make([]ReservationLine, len(r.Lines)),
		ExpiresAt:   r.ExpiresAt.UTC(),
		CreatedAt:   r.CreatedAt.UTC(),
		SettledAt:   utc(r.SettledAt),
		RestockNote: r.RestockNote,
	}
	for i, l := range r.Lines {
		out.Lines[i] = ReservationLine{ProductId: l.ProductID, Quantity: l.Quantity}
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
