package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Orders, sales and addresses. An order is composed: orders gives it with
// its lines, history and deliveries (each with its tracking history), and
// payment its payment. The payment is a part that may be missing: when
// payment cannot answer, the order says so instead of failing.

func (a *API) ListMyOrders(w http.ResponseWriter, r *http.Request, p ListMyOrdersParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMyOrders(w, r, p) })
}
func (a *API) GetMyOrder(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getMyOrder(w, r, id) })
}
func (a *API) GetMyOrderTracking(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getMyOrderTracking(w, r, id) })
}
func (a *API) CancelMyOrder(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.cancelMyOrder(w, r, id) })
}
func (a *API) ListMySales(w http.ResponseWriter, r *http.Request, p ListMySalesParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMySales(w, r, p) })
}
func (a *API) UpdateDeliveryStatus(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.updateDeliveryStatus(w, r, id) })
}
func (a *API) ListMyAddresses(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.listMyAddresses)
}
func (a *API) AddAddress(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.addAddress) }
func (a *API) DeleteAddress(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.deleteAddress(w, r, id) })
}

// paymentLookups bounds the payment reads of one page of orders.
const paymentLookups = 8

// viewPartTimeout bounds the read of an optional part of a composed view.
const viewPartTimeout = 2 * time.Second

func (a *API) listMyOrders(w http.ResponseWriter, r *http.Request, p ListMyOrdersParams) error {
	params := orders.ListMyOrdersParams{Status: p.Status, Limit: p.Limit, PageToken: p.PageToken}
	resp, err := a.Orders.ListMyOrdersWithResponse(r.Context(), &params)
	if err := reply.Check(r.Context(), capOrders, resp, err); err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return errors.New("orders page: no page in the answer")
	}
	got := resp.JSON200.Items
	page := OrderPage{Items: make([]Order, len(got)), NextPageToken: resp.JSON200.NextPageToken}
	var wg sync.WaitGroup
	sem := make(chan struct{}, paymentLookups)
	for i := range got {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, known := a.lookupPayment(r.Context(), got[i].Id)
			page.Items[i] = view(got[i], p, known)
		})
	}
	wg.Wait()
	return httpx.WriteJSON(w, http.StatusOK, page)
}

func (a *API) getMyOrder(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Orders.GetMyOrderWithResponse(r.Context(), id)
	if err := reply.Check(r.Context(), capOrders, resp, err); err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return errors.New("order: no order in the answer")
	}
	// Read only once orders said the order is the caller's.
	p, known := a.lookupPayment(r.Context(), resp.JSON200.Id)
	return httpx.WriteJSON(w, http.StatusOK, view(*resp.JSON200, p, known))
}

// lookupPayment reads the order's payment: nil when it has none; ok is
// false when payment could not say.
func (a *API) lookupPayment(ctx context.Context, orderID uuid.UUID) (p *payment.Payment, ok bool) {
	// A part of a view waits less than the view: a slow payment service
	// costs the order its payment, not its answer.
	ctx, cancel := context.WithTimeout(ctx, viewPartTimeout)
	defer cancel()
	resp, err := a.Payment.ListPaymentsWithResponse(ctx, &payment.ListPaymentsParams{OrderId: &[]uuid.UUID{orderID}})
	if err := reply.Check(ctx, "payments", resp, err); err != nil || resp.JSON200 == nil {
		logging.FromContext(ctx).Debug("order shown without its payment", "order_id", orderID, "error", err)
		return nil, false
	}
	if len(resp.JSON200.Items) == 0 {
		return nil, true
	}
	return &resp.JSON200.Items[0], true
}

// summarize keeps what a buyer may see of a payment p: none when the
// order has none, unknown-and-unavailable when payment could not say
// (known false). shop.yaml's PaymentSummary says why each field of
// payment's Payment is left out or reshaped.
func summarize(p *payment.Payment, known bool) PaymentSummary {
	switch {
	case !known:
		unavailable := true
		return PaymentSummary{Status: PaymentSummaryStatusUnknown, Unavailable: &unavailable}
	case p == nil:
		return PaymentSummary{Status: PaymentSummaryStatusNone}
	}
	s := PaymentSummary{
		Status:         PaymentSummaryStatus(p.Status),
		Amount:         &p.Amount,
		Currency:       &p.Currency,
		AmountRefunded: &p.AmountRefunded,
		FailureMessage: p.FailureMessage,
	}
	s.Card = &struct {
		Brand string `json:"brand"`
		Last4 string `json:"last4"`
	}{Brand: string(p.Card.Brand), Last4: p.Card.Last4}
	if p.FailureCode != nil {
		code := string(*p.FailureCode)
		s.FailureCode = &code
	}
	return s
}

func (a *API) getMyOrderTracking(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Orders.GetMyOrderTrackingWithResponse(r.Context(), id)
	return reply.Write(w, r, capOrders, resp, err)
}

// cancelMyOrder records the buyer's request (orders checks the order is
// theirs and not shipped), then carries it out through the checkout's
// machinery: release, refund, cancelled or refunded. What cannot be done
// now (a service down, a refund whose outcome is unknown) the recovery
// loop finishes.
func (a *API) cancelMyOrder(w http.ResponseWriter, r *http.Request, id ID) error {
	req := CancelRequest{}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		if err := httpx.DecodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	resp, err := a.Orders.CancelMyOrderWithResponse(r.Context(), id, req)
	if err := reply.Check(r.Context(), capOrders, resp, err); err != nil {
		return err
	}
	if resp.JSON202 == nil {
		return errors.New("cancel: no order in the answer")
	}
	ctx, cancel := a.detached(r)
	defer cancel()
	res := a.Saga.Advance(ctx, *resp.JSON202, nil)
	if !res.PaymentKnown {
		res.Payment, res.PaymentKnown = a.lookupPayment(ctx, res.Order.Id)
	}
	return httpx.WriteJSON(w, http.StatusAccepted, view(res.Order, res.Payment, res.PaymentKnown))
}

// view is the public order of orders' o, with its payment p (unknown
// unless known): every field of o but attention, the operators' flag,
// which buyers never see (shop.yaml's Order says so, and spec_test checks
// that it accounts for every field of orders' Order).
func view(o orders.Order, p *payment.Payment, known bool) Order {
	s := summarize(p, known)
	return Order{
		Id:              o.Id,
		BuyerId:         o.BuyerId,
		Status:          o.Status,
		StatusReason:    o.StatusReason,
		ShippingAddress: o.ShippingAddress,
		Lines:           o.Lines,
		Total:           o.Total,
		History:         o.History,
		Deliveries:      o.Deliveries,
		Payment:         &s,
		CreatedAt:       o.CreatedAt,
		UpdatedAt:       o.UpdatedAt,
		StatusChangedAt: o.StatusChangedAt,
	}
}

func (a *API) listMySales(w http.ResponseWriter, r *http.Request, p ListMySalesParams) error {
	params := orders.ListMySalesParams{DeliveryStatus: p.DeliveryStatus, Limit: p.Limit, PageToken: p.PageToken}
	resp, err := a.Orders.ListMySalesWithResponse(r.Context(), &params)
	return reply.Write(w, r, capSales, resp, err)
}

func (a *API) updateDeliveryStatus(w http.ResponseWriter, r *http.Request, id ID) error {
	req, err := decode[DeliveryStatusRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Orders.UpdateDeliveryStatusWithResponse(r.Context(), id, req)
	return reply.Write(w, r, capSales, resp, err)
}

func (a *API) listMyAddresses(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Orders.ListMyAddressesWithResponse(r.Context())
	return reply.Write(w, r, capAddresses, resp, err)
}

func (a *API) addAddress(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[Address](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Orders.AddAddressWithResponse(r.Context(), req)
	return reply.Write(w, r, capAddresses, resp, err)
}

func (a *API) deleteAddress(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Orders.DeleteAddressWithResponse(r.Context(), id)
	return reply.Write(w, r, capAddresses, resp, err)
}

// savedAddress returns the caller's saved address id, as an order's
// shipping address.
func (a *API) savedAddress(ctx context.Context, id uuid.UUID) (orders.Address, error) {
	resp, err := a.Orders.ListMyAddressesWithResponse(ctx)
	if err := reply.Check(ctx, capCheckout, resp, err); err != nil {
		return orders.Address{}, err
	}
	if resp.JSON200 != nil {
		for _, s := range resp.JSON200.Items {
			if s.Id == id {
				return orders.Address{Name: s.Name, Line1: s.Line1, Line2: s.Line2, City: s.City, PostalCode: s.PostalCode, Country: s.Country}, nil
			}
		}
	}
	return orders.Address{}, apierr.InvalidFields(apierr.FieldError{Field: "address_id", Detail: "is not one of your saved addresses"})
}
