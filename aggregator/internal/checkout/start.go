package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

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
	if cart == nil || len(cart.Lines) == 0 {
		return Result{}, apierr.WithCode(apierr.Conflict, "cart-empty", errors.New(
			"the cart is empty; if this retries a checkout whose answer was lost, its order is in GET /v1/orders"))
	}
	body, err := s.orderRequest(ctx, req, cart)
	if err != nil {
		return Result{}, err
	}
	resp, err := s.orders.CreateOrderWithResponse(peer.Idempotent(ctx), &orders.CreateOrderParams{IdempotencyKey: req.Key}, body)
	if err != nil || resp.StatusCode() >= 500 {
		return Result{}, reply.Check(ctx, "checkout", resp, err)
	}
	var o orders.Order
	replayed := false
	switch {
	case resp.JSON201 != nil:
		o = *resp.JSON201
		logging.FromContext(ctx).Info("checkout started", "order_id", o.Id, "lines", len(o.Lines), "total", o.Total.Amount, "currency", o.Total.Currency)
	case resp.JSON200 != nil:
		o, replayed = *resp.JSON200, true
	case reply.Slug(reply.ParseProblem(resp)) == "idempotency-key-reused":
		// The key made an order from another cart: this request replays
		// that checkout (the cart changed since, or was emptied by it).
		o, err = s.keyOrder(ctx, req.BuyerID, reply.ParseProblem(resp).Detail)
		if err != nil {
			return Result{}, err
		}
		replayed = true
	default:
		return Result{}, reply.Problem(resp)
	}
	res := s.Advance(ctx, o, &req.Card)
	res.Replayed = replayed
	if res.ConfirmedNow {
		s.emptyCart(ctx)
	}
	return res, nil
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

// orderIDInDetail finds the order a reused key names. The key itself is
// quoted earlier in the detail and could mimic the phrase: the last match
// is orders' own.
var orderIDInDetail = regexp.MustCompile(`already created order ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`)

// keyOrder returns the order the buyer's key created. orders names it only
// in the detail of its 409 (its API has no lookup by key yet, see the
// README); the order read back must be the buyer's.
func (s *Saga) keyOrder(ctx context.Context, buyer uuid.UUID, detail string) (orders.Order, error) {
	reused := apierr.WithCode(apierr.Conflict, "idempotency-key-reused", errors.New(
		"this Idempotency-Key was used for another checkout; use a new key for a new checkout"))
	all := orderIDInDetail.FindAllStringSubmatch(detail, -1)
	if len(all) == 0 {
		return orders.Order{}, reused
	}
	id, err := uuid.Parse(all[len(all)-1][1])
	if err != nil {
		return orders.Order{}, reused
	}
	o, err := s.get(ctx, id)
	if err != nil {
		return orders.Order{}, err
	}
	if o.BuyerId != buyer {
		return orders.Order{}, reused
	}
	return o, nil
}

// emptyCart empties the buyer's cart after a confirmed checkout. A failure
// is logged, not returned: the order is confirmed and paid whatever the
// cart shows.
func (s *Saga) emptyCart(ctx context.Context) {
	resp, err := s.inv.ClearCartWithResponse(ctx)
	if err == nil && resp.StatusCode() < 300 {
		return
	}
	if err == nil {
		err = fmt.Errorf("status %d", resp.StatusCode())
	}
	logging.FromContext(ctx).Warn("cart not emptied after checkout", "error", err)
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
	case statusFailed:
		if res.Payment != nil && res.Payment.Status == "failed" {
			return PaymentFailure(o.Id, res.Payment)
		}
		reason := ""
		if o.StatusReason != nil {
			reason = *o.StatusReason
		}
		code := "checkout-failed"
		if len(reason) >= len(reasonOutOfStock) && reason[:len(reasonOutOfStock)] == reasonOutOfStock {
			code = "out-of-stock"
		}
		return apierr.WithCode(apierr.Conflict, code, fmt.Errorf("order %s failed: %s", o.Id, reason))
	case statusCancelled, statusRefunded:
		return apierr.WithCode(apierr.Conflict, "order-cancelled", fmt.Errorf("order %s was %s", o.Id, o.Status))
	}
	return nil
}

// Status of an HTTP answer for a result with no failure.
func Status(res Result) int {
	if res.Done && res.Order.Status == statusConfirmed {
		return http.StatusCreated
	}
	return http.StatusAccepted
}
