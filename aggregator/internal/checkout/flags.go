package checkout

// Orders the saga cannot finish on its own are flagged for a person
// rather than retried silently forever: an order still unfinished past
// its bound (RecoveryConfig.FlagAfter: a service down for long, a payment
// whose outcome stays unknown), and an order whose refund the card
// processor refused (flagged with a hold: it leaves the recovery loop's
// list, since retrying would only replay the refusal). The flag lives on
// the order in orders (the aggregator keeps no state), so every replica
// sees it; orders tells the one caller that raised it, which logs it at
// error, once, and counts it. Operators read the flagged orders at GET
// /internal/orders/flagged, and a Consul check reads GET
// /internal/health/orders: 200 while no order is flagged, 429 (Consul's
// "warning") while any is. A flag goes when the order reaches
// confirmed, failed, cancelled or refunded, or when an operator clears it
// (orders' DELETE /internal/orders/{id}/flag).

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// DefaultFlagAfter is how long an order may stay unfinished in one
// status before it is flagged, when RecoveryConfig.FlagAfter is not set:
// far longer than a crashed checkout takes to converge (recovery's age
// plus an interval, under a minute), short enough for a person to act
// while the buyer still waits.
const DefaultFlagAfter = 10 * time.Minute

// maxFlagged bounds the flagged orders one operator's answer lists.
const maxFlagged = 500

// flag flags order o for a person with reason; hold takes it out of the
// recovery loop until the flag is cleared. It reports whether this call
// raised the flag (exactly one caller does); a failure to flag is logged,
// and the next pass flags it.
func (s *Saga) flag(ctx context.Context, o orders.Order, reason string, hold bool) bool {
	log := logging.FromContext(ctx)
	resp, err := s.orders.FlagOrderWithResponse(peer.Idempotent(ctx), o.Id, orders.FlagRequest{Reason: truncate(reason), Hold: &hold})
	if err := reply.Check(ctx, capOrders, resp, err); err != nil {
		log.Warn("order not flagged for now", "order_id", o.Id, "error", err)
		return false
	}
	if resp.JSON201 == nil {
		return false // flagged before, by this replica or another
	}
	s.flagged.Add(1)
	log.Error("order flagged for a person: the checkout cannot finish it on its own",
		"order_id", o.Id, "status", o.Status, "status_changed_at", o.StatusChangedAt, "hold", hold, "reason", reason)
	return true
}

// flagStuck flags an order Advance left unfinished if it has been in its
// status for longer than after.
func (s *Saga) flagStuck(ctx context.Context, res Result, after time.Duration) bool {
	o := res.Order
	if res.Done || o.Attention != nil || time.Since(o.StatusChangedAt) < after {
		return false
	}
	why := "unknown"
	if res.Wait != nil {
		why = res.Wait.Error()
	}
	return s.flag(ctx, o, fmt.Sprintf("the order has been %s for more than %s and the checkout cannot finish it: %s", o.Status, after, why), false)
}

// FlaggedCount is how many orders this process flagged since it started.
func (s *Saga) FlaggedCount() int64 { return s.flagged.Load() }

// FlaggedOrder is an operator's view of a flagged order.
type FlaggedOrder struct {
	ID              uuid.UUID          `json:"id"`
	BuyerID         uuid.UUID          `json:"buyer_id"`
	Status          orders.OrderStatus `json:"status"`
	StatusChangedAt time.Time          `json:"status_changed_at"`
	FlaggedAt       time.Time          `json:"flagged_at"`
	Reason          string             `json:"reason"`
	Hold            bool               `json:"hold"`
}

// Flagged is the answer of GET /internal/orders/flagged.
type Flagged struct {
	// Count is the number of flagged orders listed (at most maxFlagged;
	// Truncated says there are more).
	Count     int            `json:"count"`
	Truncated bool           `json:"truncated"`
	Orders    []FlaggedOrder `json:"orders"`
	// FlaggedByThisReplica counts the flags this process raised since it
	// started (a metric until issue 15 brings /metrics).
	FlaggedByThisReplica int64 `json:"flagged_by_this_replica"`
}

// ListFlagged reads the flagged orders from orders, the oldest flag
// first.
func (s *Saga) ListFlagged(ctx context.Context) (Flagged, error) {
	out := Flagged{Orders: []FlaggedOrder{}, FlaggedByThisReplica: s.FlaggedCount()}
	limit := 100
	params := orders.ListFlaggedOrdersParams{Limit: &limit}
	for {
		resp, err := s.orders.ListFlaggedOrdersWithResponse(ctx, &params)
		if err := reply.Check(ctx, capOrders, resp, err); err != nil {
			return Flagged{}, err
		}
		if resp.JSON200 == nil {
			return Flagged{}, fmt.Errorf("flagged orders: no body")
		}
		for _, o := range resp.JSON200.Items {
			if len(out.Orders) == maxFlagged {
				out.Truncated = true
				break
			}
			f := FlaggedOrder{ID: o.Id, BuyerID: o.BuyerId, Status: o.Status, StatusChangedAt: o.StatusChangedAt}
			if a := o.Attention; a != nil {
				f.FlaggedAt, f.Reason, f.Hold = a.FlaggedAt, a.Reason, a.Hold
			}
			out.Orders = append(out.Orders, f)
		}
		if out.Truncated || resp.JSON200.NextPageToken == nil {
			break
		}
		params.PageToken = resp.JSON200.NextPageToken
	}
	out.Count = len(out.Orders)
	return out, nil
}

// FlaggedHandler answers GET /internal/orders/flagged: the flagged
// orders as JSON (Flagged), or 503 when orders cannot answer. It is an
// operators' path inside the cluster: the edge refuses every path with an
// internal segment.
func (s *Saga) FlaggedHandler() http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		f, err := s.ListFlagged(r.Context())
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, f)
	})
}

// HealthHandler answers GET /internal/health/orders for a Consul HTTP
// check: 200 (passing) while no order is flagged, 429 (warning) while any
// is, and 429 too when orders cannot tell — never a 5xx, which Consul
// reads as critical and which would take the aggregator out of the edge's
// DNS answers for a fault that is not its own.
func (s *Saga) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		f, err := s.ListFlagged(ctx)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		switch {
		case err != nil:
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, "warning: the flagged orders cannot be read now: %v\n", err)
		case f.Count > 0:
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, "warning: %d orders are flagged for a person (GET /internal/orders/flagged)\n", f.Count)
		default:
			fmt.Fprintln(w, "passing: no order is flagged")
		}
	})
}
