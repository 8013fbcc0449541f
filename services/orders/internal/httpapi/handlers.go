// Package httpapi is the orders service's HTTP boundary: the routes and
// types generated from openapi/orders.yaml (api.gen.go), and the handlers
// that decode and validate requests into the orders domain's values and
// write its answers. Each generated ServerInterface method is a one-line
// adapter onto a method that returns an error; httpx turns errors into
// problem+json.
package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/mylittleshopping/shop/services/orders/internal/orders"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// API implements the generated ServerInterface.
type API struct {
	orders *orders.Service
}

var _ ServerInterface = (*API)(nil)

// New returns the service's routes. verifier authenticates bearer tokens on
// every route; the /v1 handlers require a caller, the /internal ones do not
// (see the trust model in openapi/orders.yaml and the README).
func New(svc *orders.Service, verifier *authn.Verifier) http.Handler {
	r := httpx.NewRouter()
	h := HandlerWithOptions(&API{orders: svc}, GorillaServerOptions{
		BaseRouter:       r,
		ErrorHandlerFunc: httpx.ParamError,
	})
	return verifier.Middleware(h)
}

// The ServerInterface adapters: each runs the error-returning method that
// does the work.

func (a *API) CreateOrder(w http.ResponseWriter, r *http.Request, p CreateOrderParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.createOrder(w, r, p) })
}

func (a *API) ListOrdersToRecover(w http.ResponseWriter, r *http.Request, p ListOrdersToRecoverParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listOrdersToRecover(w, r, p) })
}

func (a *API) GetOrdersByIds(w http.ResponseWriter, r *http.Request, p GetOrdersByIdsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getOrdersByIDs(w, r, p) })
}

func (a *API) GetOrderByKey(w http.ResponseWriter, r *http.Request, p GetOrderByKeyParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getOrderByKey(w, r, p) })
}

func (a *API) GetOrder(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getOrder(w, r, id) })
}

func (a *API) TransitionOrder(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.transitionOrder(w, r, id) })
}

func (a *API) ListFlaggedOrders(w http.ResponseWriter, r *http.Request, p ListFlaggedOrdersParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listFlaggedOrders(w, r, p) })
}

func (a *API) FlagOrder(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.flagOrder(w, r, id) })
}

func (a *API) ClearOrderFlag(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.clearOrderFlag(w, r, id) })
}

func (a *API) ListMyOrders(w http.ResponseWriter, r *http.Request, p ListMyOrdersParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMyOrders(w, r, p) })
}

func (a *API) GetMyOrder(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getMyOrder(w, r, id) })
}

func (a *API) GetMyOrderTracking(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getMyOrderTracking(w, r, id) })
}

func (a *API) CancelMyOrder(w http.ResponseWriter, r *http.Request, id OrderID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.cancelMyOrder(w, r, id) })
}

func (a *API) ListMySales(w http.ResponseWriter, r *http.Request, p ListMySalesParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMySales(w, r, p) })
}

func (a *API) UpdateDeliveryStatus(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.updateDeliveryStatus(w, r, id) })
}

func (a *API) ListMyAddresses(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.listMyAddresses)
}

func (a *API) AddAddress(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.addAddress)
}

func (a *API) DeleteAddress(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.deleteAddress(w, r, id) })
}

// Internal: the checkout saga.

func (a *API) createOrder(w http.ResponseWriter, r *http.Request, p CreateOrderParams) error {
	var req CreateOrderRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	in, err := toNewOrder(p.IdempotencyKey, req)
	if err != nil {
		return err
	}
	o, created, err := a.orders.Create(r.Context(), in)
	if err != nil {
		return err
	}
	if !created {
		return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
	}
	w.Header().Set("Location", "/internal/orders/"+o.ID.String())
	return httpx.WriteJSON(w, http.StatusCreated, toOrder(o))
}

// toNewOrder validates and normalizes a create request, reporting every
// field at fault at once.
func toNewOrder(key string, req CreateOrderRequest) (orders.NewOrder, error) {
	var f fields
	in := orders.NewOrder{
		IdempotencyKey: key,
		BuyerEmail:     orders.NormalizeEmail(req.BuyerEmail),
		Address:        toAddress(req.ShippingAddress).Normalize(),
	}
	f.check("Idempotency-Key", orders.CheckText(key, true, orders.MaxIdempotencyLen))
	in.BuyerID = f.uuid("buyer_id", req.BuyerId)
	f.check("buyer_email", orders.CheckEmail(in.BuyerEmail))
	for _, fe := range orders.CheckAddress(in.Address, "shipping_address.") {
		f.check(fe.Field, fe.Detail)
	}
	switch {
	case len(req.Lines) == 0:
		f.check("lines", "needs at least one line")
	case len(req.Lines) > orders.MaxLines:
		f.check("lines", fmt.Sprintf("has %d lines; at most %d are allowed", len(req.Lines), orders.MaxLines))
	default:
		in.Currency = req.Lines[0].Currency
	}
	products := map[uuid.UUID]int{}
	sellerEmails := map[uuid.UUID]int{}
	for i, l := range req.Lines[:min(len(req.Lines), orders.MaxLines)] {
		at := fmt.Sprintf("lines[%d].", i)
		line := orders.Line{
			ProductID:   f.uuid(at+"product_id", l.ProductId),
			SellerID:    f.uuid(at+"seller_id", l.SellerId),
			SellerEmail: orders.NormalizeEmail(l.SellerEmail),
			Name:        orders.NormalizeText(l.Name),
			UnitPrice:   l.UnitPrice,
			Quantity:    l.Quantity,
		}
		f.check(at+"seller_email", orders.CheckEmail(line.SellerEmail))
		f.check(at+"name", orders.CheckText(line.Name, true, orders.MaxProductNameLen))
		if line.UnitPrice < 0 {
			f.check(at+"unit_price", "must not be negative (an amount in minor units)")
		}
		if line.Quantity < 1 || line.Quantity > orders.MaxQuantity {
			f.check(at+"quantity", fmt.Sprintf("must be between 1 and %d", orders.MaxQuantity))
		}
		if msg := validate.Currency(l.Currency); msg != "" {
			f.check(at+"currency", msg)
		} else if l.Currency != in.Currency {
			f.check(at+"currency", fmt.Sprintf("must be %s, like lines[0]: an order has one currency", in.Currency))
		}
		if j, dup := products[line.ProductID]; dup && line.ProductID != uuid.Nil {
			f.check(at+"product_id", fmt.Sprintf("repeats the product of lines[%d]; send one line per product", j))
		}
		products[line.ProductID] = i
		// One seller, one address to email (checked once the first one is
		// valid, so that a single typo is reported once).
		if j, seen := sellerEmails[line.SellerID]; !seen {
			sellerEmails[line.SellerID] = i
		} else if line.SellerID != uuid.Nil && orders.CheckEmail(in.Lines[j].SellerEmail) == "" && in.Lines[j].SellerEmail != line.SellerEmail {
			f.check(at+"seller_email", fmt.Sprintf("differs from lines[%d].seller_email for the same seller", j))
		}
		in.Lines = append(in.Lines, line)
	}
	if e := req.ExpectedTotal; e != nil {
		f.check("expected_total.currency", validate.Currency(e.Currency))
		if e.Amount < 0 {
			f.check("expected_total.amount", "must not be negative")
		}
		in.ExpectedTotal = &orders.Money{Amount: e.Amount, Currency: e.Currency}
	}
	return in, f.err()
}

func (a *API) listOrdersToRecover(w http.ResponseWriter, r *http.Request, p ListOrdersToRecoverParams) error {
	filter := orders.RecoveryFilter{Statuses: orders.Recoverable}
	var f fields
	if p.Status != nil {
		filter.Statuses = []orders.Status{f.status("status", *p.Status)}
	}
	if p.OlderThan != nil && *p.OlderThan != "" {
		d, err := time.ParseDuration(*p.OlderThan)
		if err != nil || d < 0 {
			f.check("older_than", "must be a non-negative duration such as 90s, 5m or 1h30m")
		}
		filter.OlderThan = d
	}
	if p.ChangedSince != nil {
		filter.ChangedSince = *p.ChangedSince
	}
	filter.Limit, filter.After = f.page(p.Limit, p.PageToken)
	if err := f.err(); err != nil {
		return err
	}
	list, next, err := a.orders.ListToRecover(r.Context(), filter)
	if err != nil {
		return err
	}
	return writeOrderPage(w, list, next)
}

func (a *API) getOrdersByIDs(w http.ResponseWriter, r *http.Request, p GetOrdersByIdsParams) error {
	var f fields
	if n := len(p.Ids); n == 0 || n > orders.MaxOrdersPerLookup {
		f.check("ids", fmt.Sprintf("must list 1 to %d ids", orders.MaxOrdersPerLookup))
	}
	if err := f.err(); err != nil {
		return err
	}
	list, err := a.orders.ByIDs(r.Context(), p.Ids)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, OrderList{Items: mapSlice(list, toOrder)})
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	o, err := a.orders.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
}

func (a *API) getOrderByKey(w http.ResponseWriter, r *http.Request, p GetOrderByKeyParams) error {
	var f fields
	f.check("idempotency_key", orders.CheckText(p.IdempotencyKey, true, orders.MaxIdempotencyLen))
	if err := f.err(); err != nil {
		return err
	}
	o, err := a.orders.GetByKey(r.Context(), p.BuyerId, p.IdempotencyKey)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
}

func (a *API) transitionOrder(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	var req TransitionRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	to := f.status("to", req.To)
	reason := f.reason(req.Reason)
	if err := f.err(); err != nil {
		return err
	}
	o, err := a.orders.Transition(r.Context(), id, to, reason)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
}

// flagOrder flags an order for a person (internal: the saga); 201 tells
// the one caller that flagged it.
func (a *API) flagOrder(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	var req FlagRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	hold := req.Hold != nil && *req.Hold
	o, changed, err := a.orders.Flag(r.Context(), id, req.Reason, hold)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if changed {
		status = http.StatusCreated
	}
	return httpx.WriteJSON(w, status, toOrder(o))
}

func (a *API) clearOrderFlag(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	o, err := a.orders.ClearFlag(r.Context(), id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
}

func (a *API) listFlaggedOrders(w http.ResponseWriter, r *http.Request, p ListFlaggedOrdersParams) error {
	var f fields
	limit, after := f.page(p.Limit, p.PageToken)
	if err := f.err(); err != nil {
		return err
	}
	list, next, err := a.orders.ListFlagged(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return writeOrderPage(w, list, next)
}

// Buyers.

func (a *API) listMyOrders(w http.ResponseWriter, r *http.Request, p ListMyOrdersParams) error {
	buyer, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	var filter orders.ListFilter
	var f fields
	if p.Status != nil {
		filter.Status = f.status("status", *p.Status)
	}
	filter.Limit, filter.After = f.page(p.Limit, p.PageToken)
	if err := f.err(); err != nil {
		return err
	}
	list, next, err := a.orders.ListForBuyer(r.Context(), buyer, filter)
	if err != nil {
		return err
	}
	return writeOrderPage(w, list, next)
}

func (a *API) getMyOrder(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	buyer, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	o, err := a.orders.GetForBuyer(r.Context(), buyer, id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toOrder(o))
}

func (a *API) getMyOrderTracking(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	buyer, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	status, deliveries, err := a.orders.Tracking(r.Context(), buyer, id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, Tracking{
		OrderId:     id,
		OrderStatus: OrderStatus(status),
		Deliveries:  mapSlice(deliveries, toDelivery),
	})
}

func (a *API) cancelMyOrder(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	buyer, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	// The body is optional: a bare POST cancels without a reason.
	var req CancelRequest
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	var f fields
	reason := f.reason(req.Reason)
	if err := f.err(); err != nil {
		return err
	}
	o, err := a.orders.RequestCancel(r.Context(), buyer, id, reason)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, toOrder(o))
}

// Sellers.

func (a *API) listMySales(w http.ResponseWriter, r *http.Request, p ListMySalesParams) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var filter orders.SalesFilter
	var f fields
	if p.DeliveryStatus != nil {
		filter.DeliveryStatus = f.deliveryStatus("delivery_status", *p.DeliveryStatus)
	}
	filter.Limit, filter.After = f.page(p.Limit, p.PageToken)
	if err := f.err(); err != nil {
		return err
	}
	sales, next, err := a.orders.Sales(r.Context(), seller, filter)
	if err != nil {
		return err
	}
	page := SalePage{Items: mapSlice(sales, toSale), NextPageToken: encodeCursor(next)}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

func (a *API) updateDeliveryStatus(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	seller, err := authn.SellerID(r.Context())
	if err != nil {
		return err
	}
	var req DeliveryStatusRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var f fields
	m := orders.Move{Status: f.deliveryStatus("status", req.Status)}
	if m.Status == orders.Shipped {
		m.Carrier = orders.NormalizeText(deref(req.Carrier))
		m.TrackingNumber = orders.NormalizeText(deref(req.TrackingNumber))
		f.check("carrier", orders.CheckText(m.Carrier, true, orders.MaxCarrierLen))
		f.check("tracking_number", orders.CheckText(m.TrackingNumber, true, orders.MaxTrackingLen))
	} else {
		if req.Carrier != nil {
			f.check("carrier", "is only sent with status shipped")
		}
		if req.TrackingNumber != nil {
			f.check("tracking_number", "is only sent with status shipped")
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	d, err := a.orders.MoveDelivery(r.Context(), seller, id, m)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toDelivery(d))
}

// Address book.

func (a *API) listMyAddresses(w http.ResponseWriter, r *http.Request) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	list, err := a.orders.Addresses(r.Context(), user)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, AddressList{Items: mapSlice(list, toSavedAddress)})
}

func (a *API) addAddress(w http.ResponseWriter, r *http.Request) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	var req Address
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	addr := toAddress(req).Normalize()
	if fe := orders.CheckAddress(addr, ""); len(fe) > 0 {
		return apierr.InvalidFields(fe...)
	}
	saved, err := a.orders.AddAddress(r.Context(), user, addr)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/addresses/"+saved.ID.String())
	return httpx.WriteJSON(w, http.StatusCreated, toSavedAddress(saved))
}

func (a *API) deleteAddress(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	user, err := authn.CallerID(r.Context())
	if err != nil {
		return err
	}
	if err := a.orders.DeleteAddress(r.Context(), user, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fields collects the field errors of a request, to report them all at
// once, with the parsers this API repeats.
type fields struct{ validate.Errors }

// check records detail against field, unless detail is "" (no fault).
func (f *fields) check(field, detail string) { f.Check(field, detail) }

func (f *fields) err() error { return f.Err() }

// uuid parses an id sent in a body.
func (f *fields) uuid(field, s string) uuid.UUID {
	if s == "" {
		f.check(field, "is required")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		f.check(field, fmt.Sprintf("%q is not a UUID (like 0190a5c4-7f5e-7b3c-9d2a-1c2b3d4e5f60)", truncate(s, 60)))
		return uuid.Nil
	}
	return id
}

func (f *fields) status(field string, s OrderStatus) orders.Status {
	st := orders.Status(s)
	if !st.Valid() {
		f.check(field, fmt.Sprintf("%q is not an order status; use one of %s", truncate(string(s), 40), join(orders.Statuses)))
	}
	return st
}

func (f *fields) deliveryStatus(field string, s DeliveryStatus) orders.DeliveryStatus {
	st := orders.DeliveryStatus(s)
	if !st.Valid() {
		f.check(field, fmt.Sprintf("%q is not a delivery status; use one of %s", truncate(string(s), 40), join(orders.DeliveryStatuses)))
	}
	return st
}

func (f *fields) reason(s *string) string {
	reason := orders.NormalizeText(deref(s))
	f.check("reason", orders.CheckText(reason, false, orders.MaxReasonLen))
	return reason
}

// Pagination limits of every list.
const (
	defaultLimit = 20
	maxLimit     = 100
)

func (f *fields) page(limit *int, token *string) (int, *orders.Cursor) {
	n := defaultLimit
	if limit != nil {
		n = *limit
		if n < 1 || n > maxLimit {
			f.check("limit", fmt.Sprintf("must be between 1 and %d", maxLimit))
		}
	}
	var after *orders.Cursor
	if token != nil && *token != "" {
		var err error
		if after, err = decodeCursor(*token); err != nil {
			f.check("page_token", "is not a next_page_token of this list")
		}
	}
	return n, after
}

func join[S ~string](list []S) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in)) // never nil: an empty list is [] in JSON
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// A page token is the last item's position, opaque to clients:
// base64url("<time RFC 3339> <id>").
func encodeCursor(c *orders.Cursor) *string {
	if c == nil {
		return nil
	}
	s := httpx.EncodePageToken(c.At, c.ID)
	return &s
}

func decodeCursor(s string) (*orders.Cursor, error) {
	at, id, err := httpx.DecodePageToken(s)
	if err != nil {
		return nil, err
	}
	return &orders.Cursor{At: at, ID: id}, nil
}

func writeOrderPage(w http.ResponseWriter, list []orders.Order, next *orders.Cursor) error {
	return httpx.WriteJSON(w, http.StatusOK, OrderPage{Items: mapSlice(list, toOrder), NextPageToken: encodeCursor(next)})
}

// Conversions between the wire types and the domain's.

func toAddress(a Address) orders.Address {
	return orders.Address{Name: a.Name, Line1: a.Line1, Line2: deref(a.Line2), City: a.City, PostalCode: a.PostalCode, Country: a.Country}
}

func fromAddress(a orders.Address) Address {
	return Address{Name: a.Name, Line1: a.Line1, Line2: optional(a.Line2), City: a.City, PostalCode: a.PostalCode, Country: a.Country}
}

func toSavedAddress(s orders.SavedAddress) SavedAddress {
	a := fromAddress(s.Address)
	return SavedAddress{
		Id: s.ID, CreatedAt: s.CreatedAt.UTC(),
		Name: a.Name, Line1: a.Line1, Line2: a.Line2, City: a.City, PostalCode: a.PostalCode, Country: a.Country,
	}
}

func toLine(currency string) func(orders.Line) OrderLine {
	return func(l orders.Line) OrderLine {
		return OrderLine{
			ProductId: l.ProductID, SellerId: l.SellerID, Name: l.Name,
			UnitPrice: l.UnitPrice, Currency: currency, Quantity: l.Quantity, LineTotal: l.Total,
		}
	}
}

func toOrder(o orders.Order) Order {
	return Order{
		Id:              o.ID,
		BuyerId:         o.BuyerID,
		Status:          OrderStatus(o.Status),
		StatusReason:    optional(o.StatusReason),
		ShippingAddress: fromAddress(o.Address),
		Lines:           mapSlice(o.Lines, toLine(o.Currency)),
		Total:           Money{Amount: o.Total, Currency: o.Currency},
		History:         mapSlice(o.History, toStatusChange),
		Deliveries:      mapSlice(o.Deliveries, toDelivery),
		CreatedAt:       o.CreatedAt.UTC(),
		UpdatedAt:       o.UpdatedAt.UTC(),
		StatusChangedAt: o.StatusChangedAt.UTC(),
		Attention:       toAttention(o.Attention),
	}
}

func toAttention(a orders.Attention) *Attention {
	if a.FlaggedAt == nil {
		return nil
	}
	return &Attention{FlaggedAt: a.FlaggedAt.UTC(), Reason: a.Reason, Hold: a.Hold}
}

func toStatusChange(c orders.Change) StatusChange {
	sc := StatusChange{To: OrderStatus(c.To), Reason: optional(c.Reason), At: c.At.UTC()}
	if c.From != "" {
		from := OrderStatus(c.From)
		sc.From = &from
	}
	return sc
}

func toDelivery(d orders.Delivery) Delivery {
	return Delivery{
		Id:             d.ID,
		OrderId:        d.OrderID,
		SellerId:       d.SellerID,
		Status:         DeliveryStatus(d.Status),
		Carrier:        optional(d.Carrier),
		TrackingNumber: optional(d.TrackingNumber),
		History: mapSlice(d.History, func(e orders.DeliveryEvent) DeliveryEvent {
			return DeliveryEvent{Status: DeliveryStatus(e.Status), Carrier: optional(e.Carrier), TrackingNumber: optional(e.TrackingNumber), At: e.At.UTC()}
		}),
		CreatedAt: d.CreatedAt.UTC(),
		UpdatedAt: d.UpdatedAt.UTC(),
	}
}

func toSale(s orders.Sale) Sale {
	return Sale{
		OrderId:         s.OrderID,
		OrderStatus:     OrderStatus(s.OrderStatus),
		OrderedAt:       s.OrderedAt.UTC(),
		ShippingAddress: fromAddress(s.Address),
		Lines:           mapSlice(s.Lines, toLine(s.Currency)),
		Subtotal:        Money{Amount: s.Subtotal, Currency: s.Currency},
		Delivery:        toDelivery(s.Delivery),
	}
}
