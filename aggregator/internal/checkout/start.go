package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Request is a buyer's checkout, validated by the HTTP boundary. The
// buyer's access token travels in the context (peer.WithAuthorization):
// the cart is read and emptied on the buyer's behalf.
type Request struct {
	// Key is the buyer's Idempotency-Key.
	Key           string
	BuyerID       uuid.UUID
	BuyerEmail    string
	Address       orders.Address
	Card          payment.CardInput
	ExpectedTotal *orders.Money
}

// Checkout runs steps 1 (read the cart) and 2 (create the order, or find
// the one this key created) and hands the order to Advance.
func (s *Saga) Checkout(ctx context.Context, req Request) (Result, error) {
	cartResp, err := s.inv.GetCartWithResponse(ctx)
	if err := reply.Check(ctx, "checkout", cartResp, err); err != nil {
		return Result{}, err
	}
	cart := cartResp.JSON200
	var o orders.Order
	replayed := false
	if cart == nil || len(cart.Lines) == 0 {
		// Nothing to buy, unless this replays a checkout that emptied the
		// cart itself.
		found := false
		o, found, err = s.keyOrder(ctx, req.BuyerID, req.Key)
		if err != nil {
			return Result{}, err
		}
		if !found {
			return Result{}, apierr.WithCode(apierr.Conflict, "cart-empty", errors.New(
				"the cart is empty and this Idempotency-Key made no order; add products to the cart, then check out"))
		}
		replayed = true
	} else {
		o, replayed, err = s.createOrder(ctx, req, cart)
		if err != nil {
			return Result{}, err
		}
	}
	// The run that confirms the order takes exactly its lines out of the
	// cart (Advance's paid step, as the recovery loop does): not the lines
	// added while it ran, and nothing for a replay of an order confirmed
	// before.
	res := s.Advance(ctx, o, &req.Card)
	res.Replayed = replayed
	return res, nil
}

// createOrder asks orders for the pending order of the cart's lines, or
// the order this key created before: the same checkout again (200), or,
// for a key orders knows with another content, the order it made then
// (the cart changed since the checkout). replayed tells whether the order
// existed before.
func (s *Saga) createOrder(ctx context.Context, req Request, cart *inventory.Cart) (o orders.Order, replayed bool, err error) {
	body, err := s.orderRequest(ctx, req, cart)
	if err != nil {
		return orders.Order{}, false, err
	}
	resp, err := s.orders.CreateOrderWithResponse(peer.Idempotent(ctx), &orders.CreateOrderParams{IdempotencyKey: req.Key}, body)
	err = reply.Check(ctx, capCheckout, resp, err)
	switch {
	case err == nil && resp.JSON201 != nil:
		o = *resp.JSON201
		logging.FromContext(ctx).Info("checkout started", "order_id", o.Id, "lines", len(o.Lines), "total", o.Total.Amount, "currency", o.Total.Currency)
		return o, false, nil
	case err == nil && resp.JSON200 != nil:
		return *resp.JSON200, true, nil
	case err == nil:
		return orders.Order{}, false, errors.New("create order: no order in the answer")
	case slug(err, resp) == "idempotency-key-reused":
		o, found, err := s.keyOrder(ctx, req.BuyerID, req.Key)
		if err != nil {
			return orders.Order{}, false, err
		}
		if !found {
			// orders said the key is taken, then found no order of the
			// buyer's with it: not a replay this request can answer.
			return orders.Order{}, false, apierr.WithCode(apierr.Conflict, "idempotency-key-reused", errors.New(
				"this Idempotency-Key was used for another checkout; use a new key for a new checkout"))
		}
		return o, true, nil
	}
	return orders.Order{}, false, err
}

// orderRequest snapshots the cart's lines with their sellers' addresses.
func (s *Saga) orderRequest(ctx context.Context, req Request, cart *inventory.Cart) (orders.CreateOrderRequest, error) {
	var sellers []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, l := range cart.Lines {
		if !seen[l.SellerId] {
			seen[l.SellerId] = true
			sellers = append(sellers, l.SellerId)
		}
	}
	emails, err := s.sellers.Emails(ctx, sellers)
	if err != nil {
		return orders.CreateOrderRequest{}, fmt.Errorf("sellers' addresses: %w", err)
	}
	body := orders.CreateOrderRequest{
		BuyerId:         req.BuyerID.String(),
		BuyerEmail:      req.BuyerEmail,
		ShippingAddress: req.Address,
		ExpectedTotal:   req.ExpectedTotal,
		Lines:           make([]orders.OrderLineInput, len(cart.Lines)),
	}
	for i, l := range cart.Lines {
		body.Lines[i] = orders.OrderLineInput{
			ProductId:   l.ProductId.String(),
			SellerId:    l.SellerId.String(),
			SellerEmail: emails[l.SellerId],
			Name:        l.Name,
			UnitPrice:   l.UnitPrice.Amount,
			Currency:    l.UnitPrice.Currency,
			Quantity:    l.Quantity,
		}
	}
	return body, nil
}

// keyOrder returns the order the buyer's checkout key created; found is
// false when the buyer has none (orders looks the key up per buyer, so
// another buyer's equal key is never found).
func (s *Saga) keyOrder(ctx context.Context, buyer uuid.UUID, key string) (o orders.Order, found bool, err error) {
	resp, err := s.orders.GetOrderByKeyWithResponse(ctx, &orders.GetOrderByKeyParams{BuyerId: buyer, IdempotencyKey: key})
	err = reply.Check(ctx, capCheckout, resp, err)
	switch {
	case err == nil && resp.JSON200 != nil:
		return *resp.JSON200, true, nil
	case err == nil:
		return orders.Order{}, false, errors.New("find the order of checkout key: no order in the answer")
	case apierr.Is(err, apierr.NotFound):
		return orders.Order{}, false, nil
	}
	return orders.Order{}, false, fmt.Errorf("find the order of checkout key: %w", err)
}

// Outcome is the client's answer for an order a checkout reached: nil for
// a confirmed or still running order (201 or 202), else the problem of how
// it ended. A run that made the order fail says so precisely
// (res.Failure); a replay of an ended checkout is told the same story from
// the order and its payment.
func Outcome(res Result) error {
	if res.Failure != nil {
		return res.Failure
	}
	o := res.Order
	switch o.Status {
	case orders.Failed:
		if res.Payment != nil && res.Payment.Status == payment.PaymentStatusFailed {
			return PaymentFailure(o.Id, res.Payment)
		}
		reason := ""
		if o.StatusReason != nil {
			reason = *o.StatusReason
		}
		code := "checkout-failed"
		if strings.HasPrefix(reason, reasonOutOfStock) {
			code = "out-of-stock"
		}
		return apierr.WithCode(apierr.Conflict, code, fmt.Errorf("order %s failed: %s", o.Id, reason))
	case orders.Cancelled, orders.Refunded:
		return apierr.WithCode(apierr.Conflict, "order-cancelled", fmt.Errorf("order %s was %s", o.Id, o.Status))
	}
	return nil
}

// Status of an HTTP answer for a result with no failure.
func Status(res Result) int {
	if res.Done && res.Order.Status == orders.Confirmed {
		return http.StatusCreated
	}
	return http.StatusAccepted
}
