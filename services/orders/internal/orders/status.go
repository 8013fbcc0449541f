package orders

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Status is where an order is in its life.
type Status string

// The statuses of an order.
const (
	// Pending: the checkout created the order; nothing is reserved yet.
	Pending Status = "pending"
	// Reserved: inventory holds the stock for it.
	Reserved Status = "reserved"
	// Paid: payment captured the total.
	Paid Status = "paid"
	// Confirmed: the checkout completed; deliveries exist.
	Confirmed Status = "confirmed"
	// CancelRequested: the buyer asked to cancel; the aggregator refunds,
	// restocks and finishes it as cancelled or refunded.
	CancelRequested Status = "cancel_requested"
	// Failed: the checkout failed and was compensated (final).
	Failed Status = "failed"
	// Cancelled: stopped before anything was charged (final).
	Cancelled Status = "cancelled"
	// Refunded: stopped after the charge, which was refunded (final).
	Refunded Status = "refunded"
)

// Statuses lists every status, in the order of the happy path first.
var Statuses = []Status{Pending, Reserved, Paid, Confirmed, CancelRequested, Failed, Cancelled, Refunded}

// transitions is the order state machine, the one place that says which
// status may follow which. A status absent from the keys is final.
//
//	pending ─► reserved ─► paid ─► confirmed ─► refunded
//	   │          │          │         │
//	   ├──────────┴──────────┴─────────┴─► cancel_requested ─► cancelled | refunded
//	   │          │          │
//	   ├──────────┴──────────┴─► failed
//	   └──────────┴─► cancelled
//
// failed is the saga's compensation (reservation released, charge
// refunded); a cancellation request wins over a checkout still running, so
// a saga that finds cancel_requested finishes with cancelled or refunded.
var transitions = map[Status][]Status{
	Pending:         {Reserved, CancelRequested, Failed, Cancelled},
	Reserved:        {Paid, CancelRequested, Failed, Cancelled},
	Paid:            {Confirmed, CancelRequested, Failed},
	Confirmed:       {CancelRequested, Refunded},
	CancelRequested: {Cancelled, Refunded},
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Final reports whether no transition leaves s.
func (s Status) Final() bool { return s.Valid() && len(transitions[s]) == 0 }

// CanBecome reports whether the state machine has the transition s → to.
// Staying in s is not a transition (see Service.Transition: a no-op).
func (s Status) CanBecome(to Status) bool { return slices.Contains(transitions[s], to) }

// NeedsReason reports whether entering s must say why: the buyer is shown
// why an order failed or was cancelled or refunded.
func (s Status) NeedsReason() bool { return s == Failed || s == Cancelled || s == Refunded }

// Recoverable lists the statuses the checkout's recovery loop looks at by
// default: those in which the saga still has something to do.
var Recoverable = []Status{Pending, Reserved, Paid, CancelRequested}

// Settled reports whether the saga has nothing left to do for an order in
// s (it is not Recoverable): entering s clears the order's flag.
func (s Status) Settled() bool { return s.Valid() && !slices.Contains(Recoverable, s) }

// errIllegalTransition is the 409 of a move a state machine does not have
// (an order's or a delivery's); it names both statuses and what may follow
// the current one.
func errIllegalTransition[S ~string](kind string, id uuid.UUID, from, to S, next []S) error {
	allowed := "nothing: it is final"
	if len(next) > 0 {
		names := make([]string, len(next))
		for i, s := range next {
			names[i] = string(s)
		}
		allowed = strings.Join(names, ", ")
	}
	return apierr.WithCode(apierr.Conflict, "illegal-transition",
		fmt.Errorf("%s %s is %s and cannot become %s (%s → %s is not allowed; from %s: %s)", kind, id, from, to, from, to, from, allowed))
}
