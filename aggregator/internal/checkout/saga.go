// Package checkout is the checkout saga: read the cart (inventory) → create
// a pending order with a snapshot of each line (orders, idempotent on the
// buyer's checkout key) → reserve the stock (inventory, idempotent on the
// order id) → charge the card (payment, idempotent on "order-<id>") →
// commit the reservation and confirm the order → take the bought lines
// out of the cart.
//
// The aggregator keeps no state of its own: the saga's state is the
// order's status in orders, and every step is idempotent, so Advance can
// take any order at any status — a live checkout, a replay of its key, the
// recovery loop after a crash, a buyer's cancellation — and carry it one
// safe step after another to an end: confirmed, or failed, cancelled or
// refunded with everything undone. Steps that undo (refund, release) run
// before the order is moved to its final status, so a crash between them
// leaves the order listed for recovery rather than a charge without an
// order. The money goes back before the stock: a refund never waits on a
// restock. An order the saga cannot finish on its own is flagged for a
// person (flags.go) instead of being retried silently forever.
//
// Each step is one typed call (steps.go) that returns a domain result or
// an apierr error — out of stock with its lines, reservation lost, refund
// refused, a service that cannot answer — so that Advance reads as the
// state table of the aggregator's README.
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
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/services/platform/apierr"
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
	// flagged counts the orders this process flagged (flags.go).
	flagged atomic.Int64
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
	// that is down, a person) and Wait says what; it resumes later.
	Done bool
	Wait error
	// Failure is, for the run that made the order fail, what the client is
	// told: out-of-stock with the lines at fault, the card refused, …
	Failure error
	// ConfirmedNow: this run confirmed the order (and took its lines out
	// of the cart).
	ConfirmedNow bool
	// Replayed: the order existed before this run (a replayed key).
	Replayed bool
}

// Reasons the saga writes on failed orders. The buyer reads them; the
// saga reads the prefix of its own reasons back to answer a replay as the
// first answer was (they are the aggregator's vocabulary, not another
// service's messages).
const (
	reasonOutOfStock      = "out of stock"
	reasonPaymentRefused  = "payment refused"
	reasonCardInvalid     = "payment refused: the card is invalid"
	reasonNotCompleted    = "the checkout did not complete in time; nothing was charged"
	reasonReservationLost = "the reserved stock expired before the payment completed; the payment was refunded"
	reasonRefundedEarly   = "the payment was refunded before the order was confirmed"
	reasonPaymentLost     = "the payment service has no payment for this order (it was lost when the service was restored from a backup); nothing is charged and the stock is back"
	reasonCancelled       = "cancelled"
)

// maxSteps bounds one Advance; an order needs at most six steps to end.
const maxSteps = 12

// errMoved is a transition refused because the order changed status
// under the saga (a cancellation, another replica): it was re-read, and
// Advance goes on from its new status.
var errMoved = errors.New("order moved")

// run is one Advance: the result it builds and what this run itself did,
// which it must give back if someone else ends the order meanwhile.
type run struct {
	Result
	card *payment.CardInput
	// captured is a payment this run saw succeed.
	captured *payment.Payment
	// reservedNow: this run reserved the stock.
	reservedNow bool
}

// Advance carries order o as far as it can go. card is the buyer's card on
// a live checkout or a replay of it; without a card (recovery, a
// cancellation) an order that still needs a charge cannot get one, and is
// undone instead.
//
// Each status is one row of the state table (the aggregator's README):
//
//	pending           reserve → reserved | out of stock → failed      (no card: release → failed; committed → reserved)
//	reserved          charge → paid | refused → release → failed       (no card: read the payment)
//	paid              commit → confirmed, cart lines out | lost → refund → failed
//	cancel_requested  refund if captured → give the stock back → cancelled | refunded
//	confirmed, failed, cancelled, refunded: done (give back what this run took)
func (s *Saga) Advance(ctx context.Context, o orders.Order, card *payment.CardInput) Result {
	ctx = logging.With(ctx, "order_id", o.Id.String())
	r := &run{Result: Result{Order: o}, card: card}
	for range maxSteps {
		var err error
		switch r.Order.Status {
		case orders.Pending:
			err = s.pending(ctx, r)
		case orders.Reserved:
			err = s.reserved(ctx, r)
		case orders.Paid:
			err = s.paid(ctx, r)
		case orders.CancelRequested:
			err = s.cancelRequested(ctx, r)
		case orders.Confirmed:
			r.Done = true
		case orders.Failed, orders.Cancelled, orders.Refunded:
			err = s.ended(ctx, r)
		default:
			err = fmt.Errorf("unknown order status %q", r.Order.Status)
		}
		switch {
		case errors.Is(err, errMoved):
			continue
		case err != nil:
			r.Wait = err
			logging.FromContext(ctx).Info("checkout waits", "status", r.Order.Status, "reason", err)
			return r.Result
		case r.Done:
			return r.Result
		}
	}
	r.Wait = errors.New("too many steps")
	return r.Result
}

// pending: reserve the stock, or, without a card, give up.
func (s *Saga) pending(ctx context.Context, r *run) error {
	if r.card == nil {
		// A checkout that died before its charge: the buyer is not here
		// to give the card again. Whatever it reserved goes back.
		err := s.release(ctx, r.Order.Id)
		if errors.Is(err, errReservationCommitted) {
			// The order went further than orders remembers: its stock was
			// taken for good, so it was paid and confirmed, and orders was
			// restored from before that. It goes on from reserved, where
			// the payment decides: captured, the order is confirmed again
			// (committing is idempotent); none, its stock goes back.
			logging.FromContext(ctx).Warn("pending order whose stock is committed (a restore lost its later steps); going on from reserved")
			return s.transition(ctx, r, orders.Reserved, "")
		}
		if err != nil {
			return err
		}
		return s.fail(ctx, r, reasonNotCompleted, nil)
	}
	err := s.reserve(ctx, &r.Order)
	var short *OutOfStock
	switch {
	case err == nil:
		r.reservedNow = true
		return s.transition(ctx, r, orders.Reserved, "")
	case errors.As(err, &short):
		// Refused: nothing was reserved, so nothing is undone.
		return s.fail(ctx, r, short.reason(), short.problem(r.Order.Id, len(r.Order.Lines)))
	case refusal(err):
		reason := "the stock could not be reserved: " + err.Error()
		return s.fail(ctx, r, reason, apierr.WithCode(apierr.Conflict, "checkout-failed", fmt.Errorf("order %s failed: %s", r.Order.Id, reason)))
	default:
		return err
	}
}

// reserved: charge the card, or, without one, learn what the payment
// service knows.
func (s *Saga) reserved(ctx context.Context, r *run) error {
	var p *payment.Payment
	var err error
	if r.card != nil {
		p, err = s.charge(ctx, r)
	} else {
		p, err = s.paymentOf(ctx, r)
	}
	switch {
	case apierr.Is(err, apierr.Invalid):
		// The card is invalid: nothing was stored or charged, and the
		// order cannot be paid with it.
		if err := s.release(ctx, r.Order.Id); err != nil {
			return err
		}
		return s.fail(ctx, r, reasonCardInvalid, err)
	case err != nil:
		return err
	case p == nil:
		// No charge was ever asked for: the checkout died between its
		// reservation and its charge. Its stock goes back: released, or
		// restocked when a restore left it committed.
		if err := s.returnStock(ctx, r.Order.Id); err != nil {
			return err
		}
		return s.fail(ctx, r, reasonNotCompleted, nil)
	case p.Status == payment.PaymentStatusPending:
		return fmt.Errorf("payment %s outcome unknown; the payment service settles it", p.Id)
	case p.Status == payment.PaymentStatusSucceeded:
		r.captured = p
		return s.transition(ctx, r, orders.Paid, "")
	case p.Status == payment.PaymentStatusFailed:
		if err := s.release(ctx, r.Order.Id); err != nil {
			return err
		}
		var failure error
		if r.card != nil {
			failure = PaymentFailure(r.Order.Id, p)
		}
		return s.fail(ctx, r, reasonPaymentRefused+": "+paymentFailure(p), failure)
	default: // refunded or partly refunded while reserved: undo the rest
		if err := s.refundAll(ctx, r, p); err != nil {
			return err
		}
		if err := s.release(ctx, r.Order.Id); err != nil {
			return err
		}
		return s.fail(ctx, r, reasonRefundedEarly, nil)
	}
}

// paid: take the stock for good, confirm, and take the bought lines out
// of the cart; if the reservation is gone, refund. Without a payment seen
// in this run (recovery, a replay), the payment is read first: a paid
// order whose payment the payment service definitely does not have
// (restored from a backup taken before the charge) is not confirmed but
// failed, its stock given back. A payment service that cannot answer
// proves nothing, and the order goes on as paid.
func (s *Saga) paid(ctx context.Context, r *run) error {
	if r.captured == nil {
		p, err := s.paymentOf(ctx, r)
		switch {
		case err != nil:
			logging.FromContext(ctx).Debug("payment unknown; the paid order goes on", "error", err)
		case p == nil:
			logging.FromContext(ctx).Warn("paid order without a payment; failing it")
			if err := s.returnStock(ctx, r.Order.Id); err != nil {
				return err
			}
			return s.fail(ctx, r, reasonPaymentLost, nil)
		default:
			r.captured = p
		}
	}
	err := s.commit(ctx, r.Order.Id)
	switch {
	case err == nil:
		if err := s.transition(ctx, r, orders.Confirmed, ""); err != nil {
			return err
		}
		r.ConfirmedNow, r.Done = true, true
		s.removeBought(ctx, r.Order)
		return nil
	case errors.Is(err, errReservationLost):
		// The stock is back on sale and the order cannot be filled. The
		// charge goes back first.
		logging.FromContext(ctx).Warn("reservation lost after payment; refunding", "error", err)
		p := r.captured
		if p == nil {
			if p, err = s.paymentOf(ctx, r); err != nil {
				return err
			}
		}
		if p != nil {
			if err := s.refundAll(ctx, r, p); err != nil {
				return err
			}
		}
		return s.fail(ctx, r, reasonReservationLost, nil)
	default:
		return err
	}
}

// cancelRequested: the buyer asked to cancel. The charge goes back first
// (nothing the stock does may keep the buyer's money), then the stock
// (release a held reservation, restock a committed one: units beyond the
// stock's ceiling are recorded by inventory, not retried), and the order
// ends cancelled (nothing was charged) or refunded.
func (s *Saga) cancelRequested(ctx context.Context, r *run) error {
	p := r.captured
	if p == nil {
		var err error
		if p, err = s.paymentOf(ctx, r); err != nil {
			return err
		}
	}
	if p != nil && holdsMoney(*p) {
		if err := s.refundAll(ctx, r, p); err != nil {
			return err
		}
	}
	if err := s.returnStock(ctx, r.Order.Id); err != nil {
		return err
	}
	why := reasonCancelled
	if r.Order.StatusReason != nil && *r.Order.StatusReason != "" {
		why += ": " + *r.Order.StatusReason
	}
	switch {
	case p == nil || p.Status == payment.PaymentStatusFailed:
		return s.end(ctx, r, orders.Cancelled, why)
	case p.Status == payment.PaymentStatusPending:
		return fmt.Errorf("payment %s outcome unknown; the cancellation waits for it", p.Id)
	default:
		return s.end(ctx, r, orders.Refunded, why+"; the payment was refunded")
	}
}

// ended: the order is final. What this run took for an order someone else
// ended meanwhile (a cancellation won the race) is given back.
func (s *Saga) ended(ctx context.Context, r *run) error {
	if r.reservedNow {
		if err := s.release(ctx, r.Order.Id); err != nil {
			return err
		}
	}
	if r.captured != nil && r.captured.Status == payment.PaymentStatusSucceeded {
		if err := s.refundAll(ctx, r, r.captured); err != nil {
			return err
		}
	}
	r.Done = true
	return nil
}

// fail moves the order to failed with reason; failure, when not nil, is
// what this run's client is told.
func (s *Saga) fail(ctx context.Context, r *run, reason string, failure error) error {
	if err := s.transition(ctx, r, orders.Failed, truncate(reason)); err != nil {
		return err
	}
	r.Failure, r.Done = failure, true
	return nil
}

// end moves the order to a final status.
func (s *Saga) end(ctx context.Context, r *run, to orders.OrderStatus, reason string) error {
	if err := s.transition(ctx, r, to, truncate(reason)); err != nil {
		return err
	}
	r.Done = true
	return nil
}

// refundAll gives back what payment p still holds. An outcome the payment
// service has not settled yet is a wait; a refund the processor refused
// puts the order on hold for a person (retrying would replay the refusal)
// and is a wait too, out of the recovery loop's list.
func (s *Saga) refundAll(ctx context.Context, r *run, p *payment.Payment) error {
	done, err := s.refund(ctx, r, p)
	var refused *RefundRefused
	switch {
	case errors.As(err, &refused):
		s.flag(ctx, r.Order, "the card processor refused the refund of payment "+p.Id.String()+": "+refused.Message+"; refund it by hand, then clear the flag", true)
		return err
	case err != nil:
		return err
	case !done:
		return fmt.Errorf("refund of payment %s outcome unknown; the payment service settles it", p.Id)
	}
	return nil
}

// refusal reports whether err is a service's definite refusal of the
// request (a 4xx), rather than a service that could not answer.
func refusal(err error) bool {
	k := apierr.KindOf(err)
	return err != nil && k != apierr.Unavailable && k != apierr.Internal
}

// holdsMoney: the payment captured money that has not all gone back.
func holdsMoney(pm payment.Payment) bool {
	return pm.Status == payment.PaymentStatusSucceeded || pm.Status == payment.PaymentStatusPartiallyRefunded
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
