package checkout

// The saga's steps: one typed call per service operation. Each reads the
// service's answer here, once, and returns a domain result or an apierr
// error (Unavailable when the service could not answer; the service's own
// 4xx otherwise; the saga's own errors below for the answers Advance
// branches on), so that no status code or problem type is interpreted
// anywhere else.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// The capabilities named by the 503 of a service that cannot answer.
const (
	capCheckout = "checkout"
	capOrders   = "orders"
	capPayments = "payments"
)

// OutOfStock is inventory's refusal of a reservation: the lines it
// cannot fill, by their place in the order.
type OutOfStock struct {
	Lines []Shortage
}

// Shortage is one line inventory cannot fill.
type Shortage struct {
	// Index is the line's place in the order (and in the reservation
	// request, made of the order's lines in their order); -1 when
	// inventory named no line.
	Index int
	// Field is inventory's name of the field at fault
	// (lines[i].quantity, lines[i].product_id); Detail says why, with the
	// product's name when the line is known.
	Field, Detail string
}

func (e *OutOfStock) Error() string { return fmt.Sprintf("%d lines out of stock", len(e.Lines)) }

// reason is what the buyer reads on the failed order.
func (e *OutOfStock) reason() string {
	names := make([]string, 0, len(e.Lines))
	for _, l := range e.Lines {
		if l.Index >= 0 {
			names = append(names, l.Detail)
		}
	}
	reason := reasonOutOfStock
	if len(names) > 0 {
		reason += ": " + strings.Join(names, "; ")
	}
	return truncate(reason)
}

// problem is the client's 409 out-of-stock naming each line.
func (e *OutOfStock) problem(id uuid.UUID, lines int) error {
	fields := make([]apierr.FieldError, len(e.Lines))
	for i, l := range e.Lines {
		fields[i] = apierr.FieldError{Field: l.Field, Detail: l.Detail}
	}
	return &apierr.Error{
		Kind: apierr.Conflict, Code: "out-of-stock", Fields: fields,
		Err: fmt.Errorf("order %s failed: %d of its %d lines cannot be had; nothing was charged", id, len(e.Lines), lines),
	}
}

// errReservationLost: the reservation expired, was released or restocked,
// or is unknown to inventory; it cannot be committed.
var errReservationLost = errors.New("the reservation is lost")

// errReservationCommitted: a release found the stock sold; it must be
// restocked instead.
var errReservationCommitted = errors.New("the reservation is committed")

// RefundRefused is the card processor's refusal of a refund: a definite
// answer, so the saga does not retry it on its own.
type RefundRefused struct {
	PaymentID uuid.UUID
	Message   string
}

func (e *RefundRefused) Error() string {
	return fmt.Sprintf("refund of payment %s refused: %s", e.PaymentID, e.Message)
}

// reserve takes the order's stock: nil, *OutOfStock, or another error.
func (s *Saga) reserve(ctx context.Context, o *orders.Order) error {
	lines := make([]inventory.ReservationLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = inventory.ReservationLine{ProductId: l.ProductId, Quantity: l.Quantity}
	}
	ttl := int(s.cfg.ReservationTTL / time.Second)
	resp, err := s.inv.ReserveStockWithResponse(peer.Idempotent(ctx), inventory.ReservationRequest{OrderId: o.Id, Lines: lines, TtlSeconds: &ttl})
	if err := reply.Check(ctx, capCheckout, resp, err); err != nil {
		if slug(err, resp) != "out-of-stock" {
			return err
		}
		p := reply.ParseProblem(resp)
		short := &OutOfStock{Lines: make([]Shortage, len(p.Errors))}
		for i, fe := range p.Errors {
			sh := Shortage{Index: -1, Field: fe.Field, Detail: fe.Detail}
			if n, ok := lineIndex(fe.Field); ok && n < len(o.Lines) {
				sh.Index, sh.Detail = n, o.Lines[n].Name+": "+fe.Detail
			}
			short.Lines[i] = sh
		}
		return short
	}
	return nil
}

// lineIndex reads i from inventory's field name lines[i].….
func lineIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "lines[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil && n >= 0
}

// commit takes the reserved stock for good: nil, errReservationLost, or
// another error.
func (s *Saga) commit(ctx context.Context, id uuid.UUID) error {
	resp, err := s.inv.CommitReservationWithResponse(peer.Idempotent(ctx), id)
	err = reply.Check(ctx, capCheckout, resp, err)
	if err != nil && (apierr.Is(err, apierr.NotFound) || apierr.Is(err, apierr.Conflict)) {
		// 404, 409 reservation-expired, -released, -restocked: the stock
		// is back on sale.
		return fmt.Errorf("commit reservation of %s: %w: %w", id, errReservationLost, err)
	}
	return err
}

// release returns a held reservation's stock to sale; no reservation, or
// one released, expired or restocked already, is fine. A committed one is
// errReservationCommitted.
func (s *Saga) release(ctx context.Context, id uuid.UUID) error {
	resp, err := s.inv.ReleaseReservationWithResponse(peer.Idempotent(ctx), id)
	err = reply.Check(ctx, capCheckout, resp, err)
	switch {
	case err == nil, apierr.Is(err, apierr.NotFound):
		return nil
	case slug(err, resp) == "reservation-committed":
		return fmt.Errorf("release reservation of %s: %w", id, errReservationCommitted)
	}
	return err
}

// returnStock gives an order's units back: a held reservation is
// released; a committed one (the order was confirmed) is restocked, its
// units back in on_hand. Units that would take a product's stock above
// its ceiling are recorded on the reservation by inventory (its
// restock_note) and reported here, never retried: the cancellation goes
// on.
func (s *Saga) returnStock(ctx context.Context, id uuid.UUID) error {
	err := s.release(ctx, id)
	if !errors.Is(err, errReservationCommitted) {
		return err
	}
	resp, err := s.inv.RestockReservationWithResponse(peer.Idempotent(ctx), id)
	if err := reply.Check(ctx, capCheckout, resp, err); err != nil {
		return fmt.Errorf("restock reservation of %s: %w", id, err)
	}
	log := logging.FromContext(ctx)
	switch rs := resp.JSON200; {
	case rs == nil:
		return fmt.Errorf("restock reservation of %s: no body", id)
	case rs.RestockNote != nil:
		log.Warn("cancelled order restocked short: some units were not counted back", "note", *rs.RestockNote)
	default:
		log.Info("cancelled order restocked", "lines", len(rs.Lines))
	}
	return nil
}

// removeBought takes the order's lines out of its buyer's cart, once per
// order (inventory keys it on the order): a line raised while the
// checkout ran keeps the difference, a line added meanwhile stays. A
// failure is logged, not returned: the order is confirmed and paid
// whatever the cart shows.
func (s *Saga) removeBought(ctx context.Context, o orders.Order) {
	lines := make([]inventory.ReservationLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = inventory.ReservationLine{ProductId: l.ProductId, Quantity: l.Quantity}
	}
	resp, err := s.inv.RemoveCheckedOutLinesWithResponse(peer.Idempotent(ctx), o.BuyerId, inventory.CheckedOutLines{OrderId: o.Id, Lines: lines})
	if err := reply.Check(ctx, "cart", resp, err); err != nil {
		logging.FromContext(ctx).Warn("bought lines not taken out of the cart", "error", err)
	}
}

// transition moves the order; a 409 (the order moved under the saga)
// re-reads it and returns errMoved.
func (s *Saga) transition(ctx context.Context, r *run, to orders.OrderStatus, reason string) error {
	body := orders.TransitionRequest{To: to}
	if reason != "" {
		body.Reason = &reason
	}
	resp, err := s.orders.TransitionOrderWithResponse(peer.Idempotent(ctx), r.Order.Id, body)
	err = reply.Check(ctx, capOrders, resp, err)
	switch {
	case err == nil && resp.JSON200 != nil:
		if resp.JSON200.Status != r.Order.Status {
			logging.FromContext(ctx).Info("order moved", "from", r.Order.Status, "to", resp.JSON200.Status, "reason", reason)
		}
		r.Order = *resp.JSON200
		return nil
	case err == nil:
		return fmt.Errorf("transition to %s: no body", to)
	case apierr.Is(err, apierr.Conflict):
		o, err := s.get(ctx, r.Order.Id)
		if err != nil {
			return err
		}
		logging.FromContext(ctx).Info("order changed under the checkout", "wanted", to, "found", o.Status)
		r.Order = o
		return errMoved
	}
	return fmt.Errorf("transition to %s: %w", to, err)
}

// get reads an order.
func (s *Saga) get(ctx context.Context, id uuid.UUID) (orders.Order, error) {
	resp, err := s.orders.GetOrderWithResponse(ctx, id)
	if err := reply.Check(ctx, capOrders, resp, err); err != nil {
		return orders.Order{}, err
	}
	if resp.JSON200 == nil {
		return orders.Order{}, fmt.Errorf("get order %s: no body", id)
	}
	return *resp.JSON200, nil
}

// paymentOf returns the order's payment, or nil when it has none.
func (s *Saga) paymentOf(ctx context.Context, r *run) (*payment.Payment, error) {
	p, err := s.payment(ctx, r.Order.Id)
	if err == nil {
		r.Payment, r.PaymentKnown = p, true
	}
	return p, err
}

// payment returns order id's payment, or nil when it has none.
func (s *Saga) payment(ctx context.Context, id uuid.UUID) (*payment.Payment, error) {
	resp, err := s.pay.ListPaymentsWithResponse(ctx, &payment.ListPaymentsParams{OrderId: &[]uuid.UUID{id}})
	if err := reply.Check(ctx, capPayments, resp, err); err != nil {
		return nil, err
	}
	if resp.JSON200 == nil || len(resp.JSON200.Items) == 0 {
		return nil, nil
	}
	p := resp.JSON200.Items[0]
	return &p, nil
}

// chargeKey is the payment's idempotency key: one per order, so that no
// replay, retry or recovery charges an order twice.
func chargeKey(id uuid.UUID) string { return "order-" + id.String() }

// charge asks the payment service to charge the run's card for the
// order's total and returns the payment as it stands (succeeded, failed
// or pending). An invalid card is the payment service's 400 (Invalid):
// nothing was stored or charged.
func (s *Saga) charge(ctx context.Context, r *run) (*payment.Payment, error) {
	o := &r.Order
	body := payment.CreatePaymentRequest{OrderId: o.Id, Amount: o.Total.Amount, Currency: o.Total.Currency, Card: *r.card}
	deadline := time.Now().Add(s.cfg.KeyInUseWait)
	for {
		resp, err := s.pay.CreatePaymentWithResponse(ctx, &payment.CreatePaymentParams{IdempotencyKey: chargeKey(o.Id)}, body)
		err = reply.Check(ctx, capPayments, resp, err)
		var p *payment.Payment
		switch {
		case err != nil:
		case resp.JSON201 != nil:
			p = resp.JSON201
		case resp.JSON202 != nil:
			p = resp.JSON202
		}
		if p != nil {
			r.Payment, r.PaymentKnown = p, true
			return p, nil
		}
		switch {
		case err == nil:
			return nil, errors.New("charge: no payment in the answer")
		case apierr.Is(err, apierr.PaymentRequired):
			// Refused: the payment is stored failed; read it for its code.
			return s.paymentOf(ctx, r)
		case slug(err, resp) == "idempotency-key-in-use" && time.Now().Before(deadline):
			// A concurrent replay is charging this order right now.
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-ctx.Done():
				return nil, reply.Unavailable(ctx, capPayments, ctx.Err())
			}
		case apierr.Is(err, apierr.Conflict), apierr.Is(err, apierr.Unprocessable):
			// payment-exists, the key used with another card (a replay with
			// a different card), or still in use: the order's payment is
			// what counts.
			return s.paymentOf(ctx, r)
		}
		return nil, fmt.Errorf("charge: %w", err)
	}
}

// refundKey is the idempotency key of attempt n of an order's refunds:
// n is one more than the refunds its payment has, so that a retry of an
// attempt whose answer was lost is the same attempt, and a retry after a
// refusal (the refund failed) is a new one. Every caller that sees the
// payment alike (the saga on any replica, the reconciliation) names the
// same attempt.
func refundKey(id uuid.UUID, n int) string { return fmt.Sprintf("refund-%s-%d", id, n) }

// nextRefund is the refund that gives back what payment p still holds:
// its key and amount; ok is false when it holds nothing.
func nextRefund(orderID uuid.UUID, p payment.Payment) (key string, amount int64, ok bool) {
	amount = p.Amount - p.AmountRefunded
	return refundKey(orderID, len(p.Refunds)+1), amount, amount > 0 && holdsMoney(p)
}

// refund gives back what the payment still holds, as a new attempt of the
// order's refunds; done is false while an outcome is unknown (a refund
// pending at the processor, or in flight elsewhere). A refund the
// processor refuses is *RefundRefused.
func (s *Saga) refund(ctx context.Context, r *run, p *payment.Payment) (done bool, err error) {
	// The payment as it is now: what is refunded and what is pending
	// decide the attempt and its amount.
	cur, err := s.paymentOf(ctx, r)
	switch {
	case err != nil:
		return false, err
	case cur == nil:
		return true, nil // nothing to give back (a restore lost it; the reconciliation's case)
	}
	for _, rf := range cur.Refunds {
		if rf.Status == payment.RefundStatusPending {
			return false, nil
		}
	}
	key, amount, ok := nextRefund(r.Order.Id, *cur)
	if !ok {
		return cur.Status != payment.PaymentStatusPending, nil
	}
	resp, err := s.pay.CreateRefundWithResponse(ctx, cur.Id, &payment.CreateRefundParams{IdempotencyKey: key}, payment.CreateRefundRequest{Amount: amount})
	err = reply.Check(ctx, capPayments, resp, err)
	switch {
	case err == nil && resp.JSON201 != nil:
		logging.FromContext(ctx).Info("payment refunded", "payment_id", cur.Id, "amount", amount, "key", key)
		_, _ = s.paymentOf(ctx, r)
		return true, nil
	case err == nil:
		return false, nil // 202: pending; the payment service settles it
	}
	switch slug(err, resp) {
	case "refund-refused":
		why := detail(err, resp)
		logging.FromContext(ctx).Warn("the processor refused the refund", "payment_id", cur.Id, "amount", amount, "key", key, "detail", why)
		return false, &RefundRefused{PaymentID: cur.Id, Message: why}
	case "idempotency-key-in-use", "refund-exceeds-captured", "idempotency-key-reused":
		// Another caller is refunding it now, or did meanwhile: done if
		// nothing is held any more, else a later step looks again.
		logging.FromContext(ctx).Info("payment refunded elsewhere meanwhile", "payment_id", cur.Id, "detail", detail(err, resp))
		now, err := s.paymentOf(ctx, r)
		if err != nil {
			return false, err
		}
		return now == nil || (!holdsMoney(*now) && now.Status != payment.PaymentStatusPending), nil
	}
	return false, fmt.Errorf("refund payment %s: %w", cur.Id, err)
}

// slug is the problem type of a service's refusal (err a 4xx from
// reply.Check of resp), or "" for any other error: only a refusal has an
// answer to read (resp may be nil when the call failed).
func slug(err error, resp reply.Response) string {
	if !refusal(err) {
		return ""
	}
	return reply.Slug(reply.ParseProblem(resp))
}

// detail is the detail of a service's refusal, as slug.
func detail(err error, resp reply.Response) string {
	if !refusal(err) {
		return ""
	}
	return reply.ParseProblem(resp).Detail
}
