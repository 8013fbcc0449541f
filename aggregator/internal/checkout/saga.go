// Package checkout is the checkout saga: read the cart (inventory) → create
// a pending order with a snapshot of each line (orders, idempotent on the
// buyer's checkout key) → reserve the stock (inventory, idempotent on the
// order id) → charge the card (payment, idempotent on "order-<id>") →
// commit the reservation and confirm the order → empty the cart.
//
// The aggregator keeps no state of its own: the saga's state is the
// order's status in orders, and every step is idempotent, so Advance can
// take any order at any status — a live checkout, a replay of its key, the
// recovery loop after a crash, a buyer's cancellation — and carry it one
// safe step after another to an end: confirmed, or failed, cancelled or
// refunded with everything undone. Steps that undo (refund, release) run
// before the order is moved to its final status, so a crash between them
// leaves the order listed for recovery rather than a charge without an
// order.
//
// Around the saga: the recovery loop (recovery.go) advances the orders a
// crash left behind, and the reconciliation (reconcile.go) settles what
// differs between the services after their databases were restored to
// different points in time.
package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Config is the saga's part of the configuration.
type Config struct {
	// ReservationTTL is how long inventory holds the stock of a checkout.
	ReservationTTL time.Duration
	// KeyInUseWait bounds how long a charge waits while another request
	// (a concurrent replay) holds the payment's idempotency key.
	KeyInUseWait time.Duration
}

// Saga runs checkouts. It is safe for concurrent use.
type Saga struct {
	inv     *inventory.ClientWithResponses
	orders  *orders.ClientWithResponses
	pay     *payment.ClientWithResponses
	sellers *Sellers
	cfg     Config
	log     hclog.Logger
}

// New returns a saga over the services' clients.
func New(inv *inventory.ClientWithResponses, ord *orders.ClientWithResponses, pay *payment.ClientWithResponses, sellers *Sellers, cfg Config, log hclog.Logger) *Saga {
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = 15 * time.Minute
	}
	if cfg.KeyInUseWait <= 0 {
		cfg.KeyInUseWait = 5 * time.Second
	}
	return &Saga{inv: inv, orders: ord, pay: pay, sellers: sellers, cfg: cfg, log: log.Named("checkout")}
}

// Result is where an order stands after Advance.
type Result struct {
	Order orders.Order
	// Payment is the order's payment as last seen, when PaymentKnown.
	Payment      *payment.Payment
	PaymentKnown bool
	// Done: the order is confirmed or final. Otherwise it waits for
	// something outside the saga (an unknown payment outcome, a service
	// that is down) and Wait says what; it resumes later.
	Done bool
	Wait error
	// Failure is, for the run that made the order fail, what the client is
	// told: out-of-stock with the lines at fault, the card refused, …
	Failure error
	// ConfirmedNow: this run confirmed the order (the cart may be emptied).
	ConfirmedNow bool
	// Replayed: the order existed before this run (a replayed key).
	Replayed bool
}

// Order statuses, from the orders spec.
const (
	statusPending         = orders.OrderStatus("pending")
	statusReserved        = orders.OrderStatus("reserved")
	statusPaid            = orders.OrderStatus("paid")
	statusConfirmed       = orders.OrderStatus("confirmed")
	statusCancelRequested = orders.OrderStatus("cancel_requested")
	statusFailed          = orders.OrderStatus("failed")
	statusCancelled       = orders.OrderStatus("cancelled")
	statusRefunded        = orders.OrderStatus("refunded")
)

// Reasons the saga writes on failed orders. The buyer reads them; the
// saga reads the prefix of its own reasons back to answer a replay as the
// first answer was (they are the aggregator's vocabulary, not another
// service's messages).
const (
	reasonOutOfStock      = "out of stock"
	reasonPaymentRefused  = "payment refused"
	reasonNotCompleted    = "the checkout did not complete in time; nothing was charged"
	reasonReservationLost = "the reserved stock expired before the payment completed; the payment was refunded"
	reasonPaymentLost     = "the payment service has no payment for this order (it was lost when the service was restored from a backup); nothing is charged and the stock is back"
	reasonCancelled       = "cancelled"
)

// maxSteps bounds one Advance; an order needs at most six steps to end.
const maxSteps = 12

// errMoved is a transition refused because the order changed status
// under the saga (a cancellation, another replica): re-read and go on.
var errMoved = errors.New("order moved")

// Advance carries order o as far as it can go. card is the buyer's card on
// a live checkout or a replay of it; without a card (recovery, a
// cancellation) an order that still needs a charge cannot get one, and is
// undone instead.
func (s *Saga) Advance(ctx context.Context, o orders.Order, card *payment.CardInput) Result {
	ctx = logging.With(ctx, "order_id", o.Id.String())
	res := Result{Order: o}
	var captured *payment.Payment // a payment this run saw succeed
	reservedNow := false          // this run reserved stock
	for range maxSteps {
		var err error
		switch res.Order.Status {
		case statusPending:
			err = s.pending(ctx, &res, card)
			reservedNow = card != nil && (err == nil || errors.Is(err, errMoved)) && res.Failure == nil
		case statusReserved:
			captured, err = s.reserved(ctx, &res, card)
		case statusPaid:
			err = s.paid(ctx, &res, captured)
		case statusCancelRequested:
			err = s.cancelRequested(ctx, &res, captured)
		case statusConfirmed:
			res.Done = true
			return res
		case statusFailed, statusCancelled, statusRefunded:
			// What this run took for an order someone else ended meanwhile
			// (a cancellation won the race) is given back.
			if reservedNow {
				if err := s.release(ctx, res.Order.Id); err != nil {
					res.Wait = err
					return res
				}
			}
			if captured != nil && captured.Status == payment.PaymentStatus("succeeded") {
				if _, err := s.refund(ctx, &res, captured); err != nil {
					res.Wait = err
					return res
				}
			}
			res.Done = true
			return res
		default:
			res.Wait = fmt.Errorf("unknown order status %q", res.Order.Status)
			return res
		}
		switch {
		case errors.Is(err, errMoved):
			continue
		case errors.Is(err, errStop):
			return res
		case err != nil:
			res.Wait = err
			logging.FromContext(ctx).Info("checkout waits", "status", res.Order.Status, "reason", err)
			return res
		}
		if res.Failure != nil && res.Done {
			return res
		}
	}
	res.Wait = errors.New("too many steps")
	return res
}

// pending: reserve the stock, or, without a card, give up.
func (s *Saga) pending(ctx context.Context, res *Result, card *payment.CardInput) error {
	o := &res.Order
	if card == nil {
		// A checkout that died before its charge: the buyer is not here
		// to give the card again. Whatever it reserved goes back.
		if err := s.release(ctx, o.Id); err != nil {
			return err
		}
		return s.transition(ctx, res, statusFailed, reasonNotCompleted)
	}
	lines := make([]inventory.ReservationLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = inventory.ReservationLine{ProductId: l.ProductId, Quantity: l.Quantity}
	}
	ttl := int(s.cfg.ReservationTTL / time.Second)
	resp, err := s.inv.ReserveStockWithResponse(peer.Idempotent(ctx), inventory.ReservationRequest{OrderId: o.Id, Lines: lines, TtlSeconds: &ttl})
	if err != nil || resp.StatusCode() >= 500 {
		return reply.Check(ctx, "checkout", resp, err)
	}
	if resp.StatusCode() < 300 {
		return s.transition(ctx, res, statusReserved, "")
	}
	// Refused: nothing was reserved, so nothing is undone.
	p := reply.ParseProblem(resp)
	if reply.Slug(p) == "out-of-stock" {
		reason, failure := outOfStock(o, p)
		if err := s.transition(ctx, res, statusFailed, reason); err != nil {
			return err
		}
		res.Failure, res.Done = failure, true
		return nil
	}
	reason := "the stock could not be reserved: " + p.Detail
	if err := s.transition(ctx, res, statusFailed, truncate(reason)); err != nil {
		return err
	}
	res.Failure, res.Done = apierr.WithCode(apierr.Conflict, "checkout-failed", fmt.Errorf("order %s failed: %s", o.Id, reason)), true
	return nil
}

// outOfStock names each line inventory refused, by its place in the order
// (the order's lines are the cart's, in the cart's order) and its name,
// and returns the buyer's reason and the client's 409.
func outOfStock(o *orders.Order, p httpx.Problem) (string, error) {
	fields := make([]apierr.FieldError, 0, len(p.Errors))
	names := make([]string, 0, len(p.Errors))
	for _, fe := range p.Errors {
		var i int
		detail := fe.Detail
		if _, err := fmt.Sscanf(fe.Field, "lines[%d]", &i); err == nil && i >= 0 && i < len(o.Lines) {
			detail = o.Lines[i].Name + ": " + fe.Detail
			names = append(names, detail)
		}
		fields = append(fields, apierr.FieldError{Field: fe.Field, Detail: detail})
	}
	reason := reasonOutOfStock
	if len(names) > 0 {
		reason += ": " + strings.Join(names, "; ")
	}
	return truncate(reason), &apierr.Error{
		Kind: apierr.Conflict, Code: "out-of-stock", Fields: fields,
		Err: fmt.Errorf("order %s failed: %d of its %d lines cannot be had; nothing was charged", o.Id, len(p.Errors), len(o.Lines)),
	}
}

// reserved: charge the card, or, without one, learn what the payment
// service knows.
func (s *Saga) reserved(ctx context.Context, res *Result, card *payment.CardInput) (*payment.Payment, error) {
	o := &res.Order
	var p *payment.Payment
	var err error
	if card != nil {
		p, err = s.charge(ctx, res, card)
	} else {
		p, err = s.payment(ctx, res)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case p == nil:
		// No charge was ever asked for: the checkout died between its
		// reservation and its charge.
		if err := s.release(ctx, o.Id); err != nil {
			return nil, err
		}
		return nil, s.transition(ctx, res, statusFailed, reasonNotCompleted)
	case p.Status == "pending":
		return nil, fmt.Errorf("payment %s outcome unknown; the payment service settles it", p.Id)
	case p.Status == "succeeded":
		return p, s.transition(ctx, res, statusPaid, "")
	case p.Status == "failed":
		if err := s.release(ctx, o.Id); err != nil {
			return nil, err
		}
		reason := reasonPaymentRefused + ": " + paymentFailure(p)
		if err := s.transition(ctx, res, statusFailed, truncate(reason)); err != nil {
			return nil, err
		}
		if card != nil {
			res.Failure, res.Done = PaymentFailure(o.Id, p), true
		}
		return nil, nil
	default: // refunded or partially refunded while reserved: undo the rest
		if _, err := s.refund(ctx, res, p); err != nil {
			return nil, err
		}
		if err := s.release(ctx, o.Id); err != nil {
			return nil, err
		}
		return nil, s.transition(ctx, res, statusFailed, "the payment was refunded before the order was confirmed")
	}
}

// paid: take the stock for good and confirm; if the reservation is gone,
// refund. Without a payment seen in this run (recovery, a replay), the
// payment is read first: a paid order whose payment the payment service
// definitely does not have (restored from a backup taken before the
// charge) is not confirmed but failed, its stock given back. A payment
// service that cannot answer proves nothing, and the order goes on as
// paid.
func (s *Saga) paid(ctx context.Context, res *Result, captured *payment.Payment) error {
	o := &res.Order
	if captured == nil {
		p, err := s.payment(ctx, res)
		switch {
		case err != nil:
			logging.FromContext(ctx).Debug("payment unknown; the paid order goes on", "error", err)
		case p == nil:
			logging.FromContext(ctx).Warn("paid order without a payment; failing it", "order_id", o.Id)
			if err := s.returnStock(ctx, o.Id); err != nil {
				return err
			}
			return s.transition(ctx, res, statusFailed, reasonPaymentLost)
		default:
			captured = p
		}
	}
	resp, err := s.inv.CommitReservationWithResponse(peer.Idempotent(ctx), o.Id)
	if err != nil || resp.StatusCode() >= 500 {
		return reply.Check(ctx, "checkout", resp, err)
	}
	if resp.StatusCode() < 300 {
		before := o.Status
		if err := s.transition(ctx, res, statusConfirmed, ""); err != nil {
			return err
		}
		res.ConfirmedNow = before != statusConfirmed && res.Order.Status == statusConfirmed
		return nil
	}
	// 404, 409 reservation-expired or -released: the stock is back on sale
	// and the order cannot be filled. The charge goes back first.
	logging.FromContext(ctx).Warn("reservation lost after payment; refunding", "status", resp.StatusCode(), "detail", reply.ParseProblem(resp).Detail)
	p := captured
	if p == nil {
		if p, err = s.payment(ctx, res); err != nil {
			return err
		}
	}
	if p != nil {
		done, err := s.refund(ctx, res, p)
		if err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("refund of payment %s outcome unknown; the payment service settles it", p.Id)
		}
	}
	return s.transition(ctx, res, statusFailed, reasonReservationLost)
}

// cancelRequested: the buyer asked to cancel. Give the stock back
// (release a held reservation, restock a committed one), refund the
// charge, and end cancelled (nothing was charged) or refunded.
func (s *Saga) cancelRequested(ctx context.Context, res *Result, captured *payment.Payment) error {
	o := &res.Order
	if err := s.returnStock(ctx, o.Id); err != nil {
		return err
	}
	p := captured
	if p == nil {
		var err error
		if p, err = s.payment(ctx, res); err != nil {
			return err
		}
	}
	why := reasonCancelled
	if o.StatusReason != nil && *o.StatusReason != "" {
		why += ": " + *o.StatusReason
	}
	switch {
	case p == nil || p.Status == "failed":
		return s.transition(ctx, res, statusCancelled, truncate(why))
	case p.Status == "pending":
		return fmt.Errorf("payment %s outcome unknown; the cancellation waits for it", p.Id)
	default:
		done, err := s.refund(ctx, res, p)
		if err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("refund of payment %s outcome unknown; the payment service settles it", p.Id)
		}
		return s.transition(ctx, res, statusRefunded, truncate(why+"; the payment was refunded"))
	}
}

// returnStock gives a cancelled order's units back: a held reservation is
// released; a committed one (the order was confirmed) is restocked, its
// units back in on_hand. Both are idempotent, and no reservation (404),
// or one released or expired already, is fine.
func (s *Saga) returnStock(ctx context.Context, id uuid.UUID) error {
	resp, err := s.inv.ReleaseReservationWithResponse(peer.Idempotent(ctx), id)
	if err != nil || resp.StatusCode() >= 500 {
		return reply.Check(ctx, "orders", resp, err)
	}
	switch {
	case resp.StatusCode() < 300, resp.StatusCode() == http.StatusNotFound:
		return nil
	case reply.Slug(reply.ParseProblem(resp)) != "reservation-committed":
		return fmt.Errorf("release reservation of %s: %w", id, reply.Problem(resp))
	}
	rs, err := s.inv.RestockReservationWithResponse(peer.Idempotent(ctx), id)
	if err != nil || rs.StatusCode() >= 500 {
		return reply.Check(ctx, "orders", rs, err)
	}
	if rs.JSON200 == nil {
		return fmt.Errorf("restock reservation of %s: %w", id, reply.Problem(rs))
	}
	logging.FromContext(ctx).Info("cancelled order restocked", "lines", len(rs.JSON200.Lines))
	return nil
}

// transition moves the order; a 409 (the order moved under the saga)
// re-reads it and returns errMoved.
func (s *Saga) transition(ctx context.Context, res *Result, to orders.OrderStatus, reason string) error {
	body := orders.TransitionRequest{To: to}
	if reason != "" {
		body.Reason = &reason
	}
	resp, err := s.orders.TransitionOrderWithResponse(peer.Idempotent(ctx), res.Order.Id, body)
	if err != nil || resp.StatusCode() >= 500 {
		return reply.Check(ctx, "orders", resp, err)
	}
	switch {
	case resp.JSON200 != nil:
		if resp.JSON200.Status != res.Order.Status {
			logging.FromContext(ctx).Info("order moved", "from", res.Order.Status, "to", resp.JSON200.Status, "reason", reason)
		}
		res.Order = *resp.JSON200
		return nil
	case resp.StatusCode() == http.StatusConflict:
		o, err := s.get(ctx, res.Order.Id)
		if err != nil {
			return err
		}
		logging.FromContext(ctx).Info("order changed under the checkout", "wanted", to, "found", o.Status)
		res.Order = o
		return errMoved
	default:
		return fmt.Errorf("transition to %s: %w", to, reply.Problem(resp))
	}
}

func (s *Saga) get(ctx context.Context, id uuid.UUID) (orders.Order, error) {
	resp, err := s.orders.GetOrderWithResponse(ctx, id)
	if err := reply.Check(ctx, "orders", resp, err); err != nil {
		return orders.Order{}, err
	}
	if resp.JSON200 == nil {
		return orders.Order{}, fmt.Errorf("get order %s: no body", id)
	}
	return *resp.JSON200, nil
}

// release returns the order's reservation to sale; no reservation, or one
// already released or expired, is fine.
func (s *Saga) release(ctx context.Context, id uuid.UUID) error {
	resp, err := s.inv.ReleaseReservationWithResponse(peer.Idempotent(ctx), id)
	if err != nil || resp.StatusCode() >= 500 {
		return reply.Check(ctx, "checkout", resp, err)
	}
	switch {
	case resp.StatusCode() < 300, resp.StatusCode() == http.StatusNotFound:
		return nil
	default:
		return fmt.Errorf("release reservation of %s: %w", id, reply.Problem(resp))
	}
}

// payment returns the order's payment, or nil when it has none.
func (s *Saga) payment(ctx context.Context, res *Result) (*payment.Payment, error) {
	resp, err := s.pay.ListPaymentsWithResponse(ctx, &payment.ListPaymentsParams{OrderId: &[]uuid.UUID{res.Order.Id}})
	if err := reply.Check(ctx, "payments", resp, err); err != nil {
		return nil, err
	}
	res.PaymentKnown = true
	if resp.JSON200 == nil || len(resp.JSON200.Items) == 0 {
		res.Payment = nil
		return nil, nil
	}
	p := resp.JSON200.Items[0]
	res.Payment = &p
	return &p, nil
}

// chargeKey is the payment's idempotency key: one per order, so that no
// replay, retry or recovery charges an order twice.
func chargeKey(id uuid.UUID) string { return "order-" + id.String() }

// refundKey is the key of the (one, full) refund of an order's payment.
func refundKey(id uuid.UUID) string { return "refund-" + id.String() + "-1" }

// charge asks the payment service to charge card for the order's total
// and returns the payment as it stands.
func (s *Saga) charge(ctx context.Context, res *Result, card *payment.CardInput) (*payment.Payment, error) {
	o := &res.Order
	body := payment.CreatePaymentRequest{OrderId: o.Id, Amount: o.Total.Amount, Currency: o.Total.Currency, Card: *card}
	deadline := time.Now().Add(s.cfg.KeyInUseWait)
	for {
		resp, err := s.pay.CreatePaymentWithResponse(ctx, &payment.CreatePaymentParams{IdempotencyKey: chargeKey(o.Id)}, body)
		if err != nil || resp.StatusCode() >= 500 {
			return nil, reply.Check(ctx, "payments", resp, err)
		}
		var p *payment.Payment
		switch {
		case resp.JSON201 != nil:
			p = resp.JSON201
		case resp.JSON202 != nil:
			p = resp.JSON202
		}
		if p != nil {
			res.Payment, res.PaymentKnown = p, true
			return p, nil
		}
		prob := reply.ParseProblem(resp)
		switch {
		case resp.StatusCode() == http.StatusPaymentRequired:
			// Refused: the payment is stored failed; read it for its code.
			return s.payment(ctx, res)
		case reply.Slug(prob) == "idempotency-key-in-use" && time.Now().Before(deadline):
			// A concurrent replay is charging this order right now.
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-ctx.Done():
				return nil, reply.Unavailable(ctx, "payments", ctx.Err())
			}
		case resp.StatusCode() == http.StatusConflict || resp.StatusCode() == http.StatusUnprocessableEntity:
			// payment-exists, the key used with another card (a replay with
			// a different card), or still in use: the order's payment is
			// what counts.
			return s.payment(ctx, res)
		case resp.StatusCode() == http.StatusBadRequest:
			// The card is invalid: nothing was stored or charged. The order
			// cannot be paid with it.
			if err := s.release(ctx, o.Id); err != nil {
				return nil, err
			}
			reason := "payment refused: the card is invalid"
			if err := s.transition(ctx, res, statusFailed, reason); err != nil && !errors.Is(err, errMoved) {
				return nil, err
			}
			res.Failure, res.Done = reply.Problem(resp), true
			return nil, errStop
		default:
			return nil, fmt.Errorf("charge: %w", reply.Problem(resp))
		}
	}
}

// errStop ends Advance with the failure already recorded in the result.
var errStop = errors.New("stop")

// refund gives the whole payment back (one refund per order, with its own
// idempotency key); done is false while its outcome is unknown.
func (s *Saga) refund(ctx context.Context, res *Result, p *payment.Payment) (done bool, err error) {
	if p.Status == "refunded" || p.Status == "failed" || p.Status == "pending" {
		return p.Status != "pending", nil
	}
	resp, err := s.pay.CreateRefundWithResponse(ctx, p.Id, &payment.CreateRefundParams{IdempotencyKey: refundKey(res.Order.Id)}, payment.CreateRefundRequest{Amount: p.Amount})
	if err != nil || resp.StatusCode() >= 500 {
		return false, reply.Check(ctx, "payments", resp, err)
	}
	switch {
	case resp.JSON201 != nil:
		logging.FromContext(ctx).Info("payment refunded", "payment_id", p.Id, "amount", p.Amount)
		_, _ = s.payment(ctx, res)
		return true, nil
	case resp.JSON202 != nil:
		return false, nil
	}
	prob := reply.ParseProblem(resp)
	if reply.Slug(prob) == "refund-exceeds-captured" {
		// Refunded already (by this key's earlier answer, or otherwise).
		cur, err := s.payment(ctx, res)
		if err != nil {
			return false, err
		}
		if cur != nil && cur.AmountRefunded >= cur.Amount {
			return true, nil
		}
	}
	return false, fmt.Errorf("refund payment %s: %w", p.Id, reply.Problem(resp))
}

// paymentFailure is the buyer's reading of why a payment failed.
func paymentFailure(p *payment.Payment) string {
	if p.FailureMessage != nil && *p.FailureMessage != "" {
		return *p.FailureMessage
	}
	if p.FailureCode != nil {
		return strings.ReplaceAll(string(*p.FailureCode), "-", " ")
	}
	return "the card was refused"
}

// PaymentFailure is the 402 a checkout answers for a refused payment; its
// type is the payment's failure code (card-declined, …).
func PaymentFailure(orderID uuid.UUID, p *payment.Payment) error {
	code := "payment-required"
	if p.FailureCode != nil {
		code = string(*p.FailureCode)
	}
	return apierr.WithCode(apierr.PaymentRequired, code, fmt.Errorf(
		"order %s failed: %s; nothing was charged and the stock is released", orderID, paymentFailure(p)))
}

// truncate keeps a reason within orders' 500 characters.
func truncate(s string) string {
	const max = 500
	if len(s) <= max {
		return s
	}
	cut := max - 3
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
