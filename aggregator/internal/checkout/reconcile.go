package checkout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// The reconciliation after a restore. The four databases are restored
// from their backups to slightly different points in time, so one service
// may know what another has lost: a charge for an order orders never
// heard of, stock held for it, an order paid or confirmed whose payment is
// gone. A pass walks what the recent past created in payment and
// inventory and checks it against orders, then walks orders' recent
// reserved, paid and confirmed orders and checks them against payment and
// inventory, and resolves each mismatch the way that leaves no buyer
// charged for an order that does not exist:
//
//   - a payment that holds money (succeeded, partly refunded) whose order
//     orders does not know, or whose order ended failed, cancelled or
//     refunded → refunded (the saga's refund key, so never twice);
//   - a held reservation whose order is unknown → released; a committed
//     one → restocked;
//   - a paid order without a payment → its stock given back, failed; a
//     confirmed one → cancelled through cancel_requested, its stock
//     restocked (flagged if a parcel already shipped);
//   - a reserved or paid order whose reservation inventory does not know →
//     its payment refunded, failed; a confirmed one is flagged (inventory
//     lost the sale: the seller's stock is off by its units).
//
// What a pass may act on is decided only by definite answers: an order
// absent from orders' 200 answer and then a 404 for it, an empty list of
// payments, a 404 for a reservation. A service that cannot answer (a 503,
// a timeout, an open circuit) means "not known", never "does not exist":
// the object is counted as unknown and left for the next pass. Only
// objects older than the grace period are taken (longer than any live
// checkout: a checkout has a payment before its order is paid, an order
// before its reservation), and each is read again right before it is
// acted on. Every action is idempotent, so passes on several replicas at
// once, or a pass racing the recovery loop, do each thing once.

// ReconcileConfig is the reconciliation's part of the configuration.
type ReconcileConfig struct {
	// Interval is the pause between two periodic passes (±20% jitter).
	Interval time.Duration
	// Window is how far back a pass looks: a restore loses only the
	// recent past.
	Window time.Duration
	// Grace is how old an object must be before a pass acts on it: longer
	// than any live checkout and than the recovery loop's age.
	Grace time.Duration
	// Batch is the size of a page of each walk (at most 100: the services'
	// lookups of many orders at once take that many).
	Batch int
	// StepTimeout bounds one call, or the resolution of one object.
	StepTimeout time.Duration
}

// Counts is what one pass checked and did. Every resolution is also
// logged at warn with the order and what was done.
type Counts struct {
	PassID    string    `json:"pass_id"`
	StartedAt time.Time `json:"started_at"`
	Took      string    `json:"took"`
	// Complete: every walk reached its end. Otherwise Errors says which
	// could not, and why (a service that could not answer).
	Complete bool     `json:"complete"`
	Errors   []string `json:"errors,omitempty"`

	// Checked: the objects of the window older than the grace period.
	PaymentsChecked     int `json:"payments_checked"`
	ReservationsChecked int `json:"reservations_checked"`
	OrdersChecked       int `json:"orders_checked"`

	// What was done.
	PaymentsRefunded      int `json:"payments_refunded"`
	ReservationsReleased  int `json:"reservations_released"`
	ReservationsRestocked int `json:"reservations_restocked"`
	OrdersFailed          int `json:"orders_failed"`
	OrdersCancelled       int `json:"orders_cancelled"`

	// Waiting: mismatches whose resolution waits for an outcome the
	// payment service settles (a pending payment or refund).
	Waiting int `json:"waiting"`
	// Flagged: mismatches with no safe automatic resolution (a parcel
	// shipped for an order without a payment, a confirmed order whose
	// reservation is lost), left to a person; flagged again every pass.
	Flagged int `json:"flagged"`
	// Unknown: objects about which a service could not answer; nothing
	// was done, the next pass looks again.
	Unknown int `json:"unknown"`
}

func (c *Counts) acted() int {
	return c.PaymentsRefunded + c.ReservationsReleased + c.ReservationsRestocked + c.OrdersFailed + c.OrdersCancelled
}

// Reconciler runs reconciliation passes: periodically, and on demand
// (Trigger), one at a time per replica.
type Reconciler struct {
	saga     *Saga
	cfg      ReconcileConfig
	log      hclog.Logger
	triggers chan trigger
}

type trigger struct {
	id   string
	done chan Counts
}

// NewReconciler returns a reconciler working through the saga's clients.
func NewReconciler(s *Saga, cfg ReconcileConfig, log hclog.Logger) *Reconciler {
	if cfg.Batch < 1 || cfg.Batch > maxLookup {
		cfg.Batch = maxLookup
	}
	return &Reconciler{saga: s, cfg: cfg, log: log.Named("reconcile"), triggers: make(chan trigger)}
}

// maxLookup is how many orders the services look up at once.
const maxLookup = 100

// ErrBusy is Trigger's answer when the reconciler did not take the
// request in time: a pass is running.
var ErrBusy = errors.New("a reconciliation pass is running")

// Run makes a pass every Interval and one for every Trigger, until ctx
// ends. Passes never overlap on one replica; on several replicas at once
// they are safe, every action being idempotent.
func (r *Reconciler) Run(ctx context.Context) {
	r.log.Info("reconciliation loop started", "interval", r.cfg.Interval, "window", r.cfg.Window, "grace", r.cfg.Grace, "batch", r.cfg.Batch)
	for {
		jitter := time.Duration(float64(r.cfg.Interval) * (0.8 + 0.4*rand.Float64()))
		timer := time.NewTimer(jitter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
			r.Pass(ctx, "reconcile-"+uuid.NewString())
		case t := <-r.triggers:
			timer.Stop()
			t.done <- r.Pass(ctx, t.id)
		}
	}
}

// Trigger asks the loop for a pass now. It returns the pass's id and a
// channel that receives its counts once it ends (the pass goes on after
// ctx ends), or ErrBusy if the loop did not take the request before ctx
// ended.
func (r *Reconciler) Trigger(ctx context.Context) (string, <-chan Counts, error) {
	t := trigger{id: "reconcile-" + uuid.NewString(), done: make(chan Counts, 1)}
	select {
	case r.triggers <- t:
		return t.id, t.done, nil
	case <-ctx.Done():
		return "", nil, ErrBusy
	}
}

// Pass makes one reconciliation pass with the request id id and returns
// its counts, which it also logs.
func (r *Reconciler) Pass(ctx context.Context, id string) Counts {
	log := r.log.With("request_id", id)
	ctx = httpx.WithRequestID(ctx, id)
	ctx = logging.WithContext(ctx, log)
	now := time.Now()
	p := &pass{
		Reconciler: r, log: log,
		since: now.Add(-r.cfg.Window).UTC(), cutoff: now.Add(-r.cfg.Grace),
		c: Counts{PassID: id, StartedAt: now.UTC()},
	}
	p.payments(ctx)
	p.reservations(ctx)
	for _, st := range []orders.OrderStatus{orders.Reserved, orders.Paid, orders.Confirmed} {
		p.orders(ctx, st)
	}
	if ctx.Err() != nil {
		p.fail("pass", ctx.Err())
	}
	p.c.Complete = len(p.c.Errors) == 0
	p.c.Took = time.Since(now).Round(time.Millisecond).String()
	c := p.c
	fields := []any{"took", c.Took, "complete", c.Complete,
		"payments_checked", c.PaymentsChecked, "reservations_checked", c.ReservationsChecked, "orders_checked", c.OrdersChecked,
		"payments_refunded", c.PaymentsRefunded, "reservations_released", c.ReservationsReleased,
		"reservations_restocked", c.ReservationsRestocked, "orders_failed", c.OrdersFailed, "orders_cancelled", c.OrdersCancelled,
		"waiting", c.Waiting, "flagged", c.Flagged, "unknown", c.Unknown}
	if len(c.Errors) > 0 {
		fields = append(fields, "errors", c.Errors)
	}
	if c.acted()+c.Flagged+c.Waiting+c.Unknown > 0 || !c.Complete {
		log.Warn("reconciliation pass", fields...)
	} else {
		log.Info("reconciliation pass", fields...)
	}
	return c
}

// pass is the state of one pass.
type pass struct {
	*Reconciler
	log    hclog.Logger
	since  time.Time // the window's start
	cutoff time.Time // objects created (orders: changed) after it are too young
	c      Counts
}

func (p *pass) fail(what string, err error) {
	p.c.Errors = append(p.c.Errors, fmt.Sprintf("%s: %v", what, err))
}

// step is the context of one call or one resolution.
func (p *pass) step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.StepTimeout)
}

// Walk 1: the recent payments, against orders.

func (p *pass) payments(ctx context.Context) {
	limit := p.cfg.Batch
	params := payment.ListPaymentsParams{Since: &p.since, Limit: &limit}
	for ctx.Err() == nil {
		sctx, cancel := p.step(ctx)
		resp, err := p.saga.pay.ListPaymentsWithResponse(sctx, &params)
		cancel()
		if err := reply.Check(ctx, "payments", resp, err); err != nil {
			p.fail("walk of the payments", err)
			return
		}
		if resp.JSON200 == nil {
			p.fail("walk of the payments", errors.New("no body"))
			return
		}
		var suspects []payment.Payment
		young := false
		for _, pm := range resp.JSON200.Items {
			if pm.CreatedAt.After(p.cutoff) {
				young = true // the walk is oldest first: the rest are younger still
				break
			}
			p.c.PaymentsChecked++
			if holdsMoney(pm) || pm.Status == "pending" {
				suspects = append(suspects, pm)
			}
		}
		if len(suspects) > 0 {
			ids := make([]uuid.UUID, len(suspects))
			for i, pm := range suspects {
				ids[i] = pm.OrderId
			}
			found, err := p.ordersByID(ctx, ids)
			if err != nil {
				p.c.Unknown += len(suspects)
				p.fail("orders of the payments", err)
				return
			}
			for _, pm := range suspects {
				o, ok := found[pm.OrderId]
				switch {
				case !ok:
					p.paymentWithoutOrder(ctx, pm)
				case holdsMoney(pm) && isFinal(o.Status):
					p.paymentOfEndedOrder(ctx, pm)
				}
			}
		}
		if young || resp.JSON200.NextPageToken == nil {
			return
		}
		params.PageToken = resp.JSON200.NextPageToken
	}
}

func isFinal(s orders.OrderStatus) bool {
	return s == orders.Failed || s == orders.Cancelled || s == orders.Refunded
}

// ordersByID looks the orders up, at most maxLookup at once; an id absent
// from the map has no order.
func (p *pass) ordersByID(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]orders.Order, error) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	resp, err := p.saga.orders.GetOrdersByIdsWithResponse(ctx, &orders.GetOrdersByIdsParams{Ids: unique(ids)})
	if err := reply.Check(ctx, "orders", resp, err); err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, errors.New("orders by ids: no body")
	}
	out := make(map[uuid.UUID]orders.Order, len(resp.JSON200.Items))
	for _, o := range resp.JSON200.Items {
		out[o.Id] = o
	}
	return out, nil
}

func unique(ids []uuid.UUID) []uuid.UUID {
	seen := make(map[uuid.UUID]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// orderGone reports whether orders definitely does not have the order:
// true only on its 404. An error means it could not tell.
func (p *pass) orderGone(ctx context.Context, id uuid.UUID) (gone bool, o orders.Order, err error) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	resp, err := p.saga.orders.GetOrderWithResponse(ctx, id)
	switch {
	case err != nil || resp.StatusCode() >= 500:
		return false, orders.Order{}, reply.Check(ctx, "orders", resp, err)
	case resp.StatusCode() == http.StatusNotFound:
		return true, orders.Order{}, nil
	case resp.JSON200 != nil:
		return false, *resp.JSON200, nil
	}
	return false, orders.Order{}, fmt.Errorf("get order %s: %w", id, reply.Problem(resp))
}

// paymentWithoutOrder: orders' answer left the payment's order out. Read
// both again; refund if the order is still unknown and money is held.
func (p *pass) paymentWithoutOrder(ctx context.Context, pm payment.Payment) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	log := p.log.With("order_id", pm.OrderId, "payment_id", pm.Id)
	gone, _, err := p.orderGone(ctx, pm.OrderId)
	if err != nil {
		p.c.Unknown++
		log.Debug("order of a payment unknown for now", "error", err)
		return
	}
	if !gone {
		return // it appeared: not one for this pass
	}
	p.refund(ctx, log, pm.Id, pm.OrderId, "its order does not exist")
}

// paymentOfEndedOrder: the payment holds money for an order that ended
// failed, cancelled or refunded (its refund was lost, or never made: a
// restore of payment to before it, or a checkout that died between the
// charge and its order's move to paid). The order is read again, then the
// money goes back.
func (p *pass) paymentOfEndedOrder(ctx context.Context, pm payment.Payment) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	log := p.log.With("order_id", pm.OrderId, "payment_id", pm.Id)
	gone, o, err := p.orderGone(ctx, pm.OrderId)
	switch {
	case err != nil:
		p.c.Unknown++
		log.Debug("order of a payment unknown for now", "error", err)
		return
	case gone:
		p.refund(ctx, log, pm.Id, pm.OrderId, "its order does not exist")
		return
	case !isFinal(o.Status):
		return
	}
	p.refund(ctx, log, pm.Id, pm.OrderId, "its order is "+string(o.Status))
}

// refund reads payment id again and gives back whatever it still holds,
// with a key derived from the order and what is refunded already, so
// that no pass, replica or saga refunds it twice.
func (p *pass) refund(ctx context.Context, log hclog.Logger, id, orderID uuid.UUID, why string) {
	resp, err := p.saga.pay.GetPaymentWithResponse(ctx, id)
	if err != nil || resp.StatusCode() >= 500 {
		p.c.Unknown++
		log.Debug("payment unknown for now", "error", reply.Check(ctx, "payments", resp, err))
		return
	}
	if resp.JSON200 == nil {
		return // gone meanwhile (404): nothing to give back
	}
	cur := *resp.JSON200
	switch {
	case cur.Status == "pending":
		p.c.Waiting++
		log.Warn("reconciliation: a payment whose outcome is unknown waits; "+why, "status", cur.Status)
		return
	case !holdsMoney(cur):
		return
	}
	for _, rf := range cur.Refunds {
		if rf.Status == payment.RefundStatusFailed && rf.FailureCode != nil && *rf.FailureCode == "refund-refused" {
			// A refusal is the processor's definite answer: a new attempt
			// every pass would only replay it. A person decides.
			p.c.Flagged++
			log.Warn("reconciliation: the processor refused a refund of this payment before; left to a person; "+why, "refund_id", rf.Id)
			return
		}
		if rf.Status == "pending" {
			p.c.Waiting++
			log.Warn("reconciliation: a refund whose outcome is unknown waits; "+why, "refund_id", rf.Id)
			return
		}
	}
	// The saga's next attempt: a refund it makes of this payment now is
	// this one, so it is made once.
	key, amount, _ := nextRefund(orderID, cur)
	rr, err := p.saga.pay.CreateRefundWithResponse(ctx, id, &payment.CreateRefundParams{IdempotencyKey: key}, payment.CreateRefundRequest{Amount: amount})
	switch {
	case err != nil || rr.StatusCode() >= 500:
		p.c.Unknown++
		log.Debug("refund not made for now", "error", reply.Check(ctx, "payments", rr, err))
		return
	case rr.JSON201 != nil:
		p.c.PaymentsRefunded++
		log.Warn("reconciliation: payment refunded; "+why, "amount", amount, "currency", cur.Currency)
		return
	case rr.JSON202 != nil:
		p.c.Waiting++
		log.Warn("reconciliation: refund asked, its outcome unknown; the payment service settles it; "+why, "amount", amount)
		return
	}
	switch prob := reply.ParseProblem(rr); reply.Slug(prob) {
	case "refund-refused":
		p.c.Flagged++
		log.Warn("reconciliation: the processor refused the refund; left to a person; "+why, "amount", amount, "detail", prob.Detail)
	case "idempotency-key-in-use":
		p.c.Waiting++
		log.Info("refund of the payment in flight elsewhere (another replica, the saga)", "amount", amount)
	case "refund-exceeds-captured", "payment-not-captured":
		log.Info("payment changed under the reconciliation", "detail", prob.Detail)
	default:
		p.fail("refund of payment "+id.String(), reply.Problem(rr))
	}
}

// Walk 2: the recent reservations, against orders.

func (p *pass) reservations(ctx context.Context) {
	limit := p.cfg.Batch
	params := inventory.ListReservationsParams{Since: &p.since, Limit: &limit}
	for ctx.Err() == nil {
		sctx, cancel := p.step(ctx)
		resp, err := p.saga.inv.ListReservationsWithResponse(sctx, &params)
		cancel()
		if err := reply.Check(ctx, "inventory", resp, err); err != nil {
			p.fail("walk of the reservations", err)
			return
		}
		if resp.JSON200 == nil {
			p.fail("walk of the reservations", errors.New("no body"))
			return
		}
		var suspects []inventory.Reservation
		young := false
		for _, res := range resp.JSON200.Items {
			if res.CreatedAt.After(p.cutoff) {
				young = true
				break
			}
			p.c.ReservationsChecked++
			if res.Status == "held" || res.Status == "committed" {
				suspects = append(suspects, res)
			}
		}
		if len(suspects) > 0 {
			ids := make([]uuid.UUID, len(suspects))
			for i, res := range suspects {
				ids[i] = res.OrderId
			}
			found, err := p.ordersByID(ctx, ids)
			if err != nil {
				p.c.Unknown += len(suspects)
				p.fail("orders of the reservations", err)
				return
			}
			for _, res := range suspects {
				if _, ok := found[res.OrderId]; !ok {
					p.reservationWithoutOrder(ctx, res)
				}
			}
		}
		if young || resp.JSON200.NextPageToken == nil {
			return
		}
		params.PageToken = resp.JSON200.NextPageToken
	}
}

// reservationWithoutOrder: the order is read again; if still unknown, a
// held reservation is released, a committed one restocked.
func (p *pass) reservationWithoutOrder(ctx context.Context, res inventory.Reservation) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	log := p.log.With("order_id", res.OrderId)
	gone, _, err := p.orderGone(ctx, res.OrderId)
	if err != nil {
		p.c.Unknown++
		log.Debug("order of a reservation unknown for now", "error", err)
		return
	}
	if !gone {
		return
	}
	rel, err := p.saga.inv.ReleaseReservationWithResponse(peer.Idempotent(ctx), res.OrderId)
	switch {
	case err != nil || rel.StatusCode() >= 500:
		p.c.Unknown++
		log.Debug("release not made for now", "error", reply.Check(ctx, "inventory", rel, err))
		return
	case rel.JSON200 != nil:
		if rel.JSON200.Status == "released" && res.Status == "held" {
			p.c.ReservationsReleased++
			log.Warn("reconciliation: reservation released; its order does not exist", "lines", len(rel.JSON200.Lines))
		}
		return
	case rel.StatusCode() == http.StatusNotFound:
		return
	case reply.Slug(reply.ParseProblem(rel)) != "reservation-committed":
		p.fail("release of the reservation of "+res.OrderId.String(), reply.Problem(rel))
		return
	}
	rs, err := p.saga.inv.RestockReservationWithResponse(peer.Idempotent(ctx), res.OrderId)
	switch {
	case err != nil || rs.StatusCode() >= 500:
		p.c.Unknown++
		log.Debug("restock not made for now", "error", reply.Check(ctx, "inventory", rs, err))
	case rs.JSON200 != nil:
		p.c.ReservationsRestocked++
		log.Warn("reconciliation: committed reservation restocked; its order does not exist", "lines", len(rs.JSON200.Lines))
	default:
		p.fail("restock of the reservation of "+res.OrderId.String(), reply.Problem(rs))
	}
}

// Walk 3: the recent orders of one status, against payment and inventory.

func (p *pass) orders(ctx context.Context, status orders.OrderStatus) {
	limit := p.cfg.Batch
	age := p.cfg.Grace.String()
	params := orders.ListOrdersToRecoverParams{Status: &status, OlderThan: &age, ChangedSince: &p.since, Limit: &limit}
	for ctx.Err() == nil {
		sctx, cancel := p.step(ctx)
		resp, err := p.saga.orders.ListOrdersToRecoverWithResponse(sctx, &params)
		cancel()
		if err := reply.Check(ctx, "orders", resp, err); err != nil {
			p.fail("walk of the "+string(status)+" orders", err)
			return
		}
		if resp.JSON200 == nil {
			p.fail("walk of the "+string(status)+" orders", errors.New("no body"))
			return
		}
		page := resp.JSON200.Items
		if len(page) > 0 {
			ids := make([]uuid.UUID, len(page))
			for i, o := range page {
				ids[i] = o.Id
			}
			pays, err := p.paymentsOf(ctx, ids)
			if err != nil {
				p.c.Unknown += len(page)
				p.fail("payments of the "+string(status)+" orders", err)
				return
			}
			held, err := p.reservationsOf(ctx, ids)
			if err != nil {
				p.c.Unknown += len(page)
				p.fail("reservations of the "+string(status)+" orders", err)
				return
			}
			for _, o := range page {
				p.c.OrdersChecked++
				_, hasPayment := pays[o.Id]
				_, hasReservation := held[o.Id]
				switch {
				case o.Status == orders.Reserved && !hasReservation:
					p.orderWithoutReservation(ctx, o)
				case (o.Status == orders.Paid || o.Status == orders.Confirmed) && !hasPayment:
					p.orderWithoutPayment(ctx, o)
				case o.Status == orders.Paid && !hasReservation:
					p.orderWithoutReservation(ctx, o)
				case o.Status == orders.Confirmed && !hasReservation:
					p.c.Flagged++
					p.log.Warn("reconciliation: confirmed order without a reservation: inventory lost its sale, and the stock of its products counts its units again; left to a person",
						"order_id", o.Id, "lines", len(o.Lines))
				}
			}
		}
		if resp.JSON200.NextPageToken == nil {
			return
		}
		params.PageToken = resp.JSON200.NextPageToken
	}
}

// paymentsOf reads the payments of the orders: an order absent from the
// map definitely has none.
func (p *pass) paymentsOf(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]payment.Payment, error) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	ids = unique(ids)
	resp, err := p.saga.pay.ListPaymentsWithResponse(ctx, &payment.ListPaymentsParams{OrderId: &ids})
	if err := reply.Check(ctx, "payments", resp, err); err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, errors.New("payments of orders: no body")
	}
	out := make(map[uuid.UUID]payment.Payment, len(resp.JSON200.Items))
	for _, pm := range resp.JSON200.Items {
		out[pm.OrderId] = pm
	}
	return out, nil
}

// reservationsOf reads the reservations of the orders: an order absent
// from the map definitely has none.
func (p *pass) reservationsOf(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]inventory.Reservation, error) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	ids = unique(ids)
	resp, err := p.saga.inv.ListReservationsWithResponse(ctx, &inventory.ListReservationsParams{OrderId: &ids})
	if err := reply.Check(ctx, "inventory", resp, err); err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, errors.New("reservations of orders: no body")
	}
	out := make(map[uuid.UUID]inventory.Reservation, len(resp.JSON200.Items))
	for _, r := range resp.JSON200.Items {
		out[r.OrderId] = r
	}
	return out, nil
}

// current reads the order again right before acting: it must still be
// in status and older than the grace period.
func (p *pass) current(ctx context.Context, o orders.Order) (orders.Order, bool) {
	gone, cur, err := p.orderGone(ctx, o.Id)
	switch {
	case err != nil:
		p.c.Unknown++
		p.log.Debug("order unknown for now", "order_id", o.Id, "error", err)
		return orders.Order{}, false
	case gone || cur.Status != o.Status || cur.StatusChangedAt.After(p.cutoff):
		return orders.Order{}, false
	}
	return cur, true
}

// orderWithoutPayment: a paid or confirmed order whose payment the
// payment service does not have. Read both again; then a paid order's
// stock goes back and it fails (Advance's paid step does that); a
// confirmed one is cancelled, as a buyer's cancellation would be, unless
// a parcel has shipped.
func (p *pass) orderWithoutPayment(ctx context.Context, o orders.Order) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	log := p.log.With("order_id", o.Id)
	pm, err := p.saga.payment(ctx, o.Id)
	switch {
	case err != nil:
		p.c.Unknown++
		log.Debug("payment of an order unknown for now", "error", err)
		return
	case pm != nil:
		return // it is there after all
	}
	cur, ok := p.current(ctx, o)
	if !ok {
		return
	}
	if cur.Status == orders.Confirmed {
		reason := "the payment service has no payment for this order (lost when it was restored from a backup); nothing is charged"
		tr, err := p.saga.orders.TransitionOrderWithResponse(peer.Idempotent(ctx), cur.Id, orders.TransitionRequest{To: orders.CancelRequested, Reason: &reason})
		switch {
		case err != nil || tr.StatusCode() >= 500:
			p.c.Unknown++
			log.Debug("order not moved for now", "error", reply.Check(ctx, "orders", tr, err))
			return
		case reply.Slug(reply.ParseProblem(tr)) == "already-shipped":
			p.c.Flagged++
			log.Warn("reconciliation: confirmed order without a payment has shipped; left to a person", "deliveries", len(cur.Deliveries))
			return
		case tr.JSON200 == nil:
			log.Info("order moved under the reconciliation", "detail", reply.ParseProblem(tr).Detail)
			return
		}
		cur = *tr.JSON200
	}
	done := p.saga.Advance(ctx, cur, nil)
	switch end := done.Order.Status; {
	case end == orders.Failed && cur.Status == orders.Paid:
		p.c.OrdersFailed++
		log.Warn("reconciliation: paid order without a payment failed, its stock given back", "reason", deref(done.Order.StatusReason))
	case end == orders.Cancelled:
		p.c.OrdersCancelled++
		log.Warn("reconciliation: confirmed order without a payment cancelled, its stock restocked", "reason", deref(done.Order.StatusReason))
	case done.Wait != nil:
		p.c.Unknown++
		log.Info("order without a payment waits", "status", end, "reason", done.Wait)
	default:
		log.Info("order without a payment ended otherwise", "status", end)
	}
}

// orderWithoutReservation: a reserved or paid order whose reservation
// inventory does not have. Read both again; refund what was charged, then
// fail the order.
func (p *pass) orderWithoutReservation(ctx context.Context, o orders.Order) {
	ctx, cancel := p.step(ctx)
	defer cancel()
	log := p.log.With("order_id", o.Id)
	rr, err := p.saga.inv.GetReservationWithResponse(ctx, o.Id)
	switch {
	case err != nil || rr.StatusCode() >= 500:
		p.c.Unknown++
		log.Debug("reservation unknown for now", "error", reply.Check(ctx, "inventory", rr, err))
		return
	case rr.StatusCode() != http.StatusNotFound:
		return // it is there after all (or another answer: not a definite absence)
	}
	cur, ok := p.current(ctx, o)
	if !ok {
		return
	}
	res := &run{Result: Result{Order: cur}}
	pm, err := p.saga.paymentOf(ctx, res)
	if err != nil {
		p.c.Unknown++
		log.Debug("payment of an order unknown for now", "error", err)
		return
	}
	reason := "the stock reservation of this order was lost when the inventory service was restored from a backup; nothing is charged"
	if pm != nil {
		switch {
		case pm.Status == "pending":
			p.c.Waiting++
			log.Warn("reconciliation: order without a reservation waits for its payment's outcome", "payment_id", pm.Id)
			return
		case holdsMoney(*pm):
			done, err := p.saga.refund(ctx, res, pm)
			var refused *RefundRefused
			if errors.As(err, &refused) {
				p.c.Flagged++
				log.Warn("reconciliation: the processor refused the refund of an order without a reservation; left to a person", "payment_id", pm.Id, "detail", refused.Message)
				return
			}
			if err != nil || !done {
				p.c.Waiting++
				log.Warn("reconciliation: order without a reservation waits for its refund", "payment_id", pm.Id, "error", errString(err))
				return
			}
			p.c.PaymentsRefunded++
			log.Warn("reconciliation: payment refunded; its order has no reservation", "payment_id", pm.Id, "amount", pm.Amount)
			reason = "the stock reservation of this order was lost when the inventory service was restored from a backup; the payment was refunded"
		}
	}
	if err := p.saga.transition(ctx, res, orders.Failed, reason); err != nil {
		if errors.Is(err, errMoved) {
			log.Info("order moved under the reconciliation", "status", res.Order.Status)
		} else {
			p.c.Unknown++
			log.Debug("order not failed for now", "error", err)
		}
		return
	}
	p.c.OrdersFailed++
	log.Warn("reconciliation: order without a reservation failed", "from", cur.Status, "reason", reason)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
