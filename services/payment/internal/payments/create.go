package payments

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// NewPayment is a payment to make, validated at the boundary.
type NewPayment struct {
	OrderID  uuid.UUID
	Amount   int64
	Currency string
	Card     Card
}

// RenderPayment turns a payment into the answer a request gets: the HTTP
// boundary's, so that what is stored and replayed is exactly what was sent.
type RenderPayment func(Payment) Response

// Create makes the payment in, idempotently on key: see the package
// comment. The answer is render's of the payment, stored with the key once
// the payment is settled; a pending payment's answer is not stored, and a
// retry with the key carries on with the same payment.
func (s *Service) Create(ctx context.Context, key string, in NewPayment, render RenderPayment) (Response, error) {
	fp := s.paymentFingerprint(in)
	id, err := uuid.NewV7()
	if err != nil {
		return Response{}, err
	}
	var (
		c claim
		p Payment
	)
	// The claim commits before the processor is called.
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if c, err = s.claimKey(ctx, tx, key, opCreatePayment, fp, id, nil); err != nil || c.state != claimOwned {
			return err
		}
		if c.isNew {
			p, err = insertPayment(ctx, tx, Payment{
				ID: id, OrderID: in.OrderID, Amount: in.Amount, Currency: in.Currency,
				Card: in.Card.Summary(), processorKey: processorKey("payment", id),
			}, s.cfg.IdempotencyLease)
			return err
		}
		if p, err = getPayment(ctx, tx, c.paymentID, true); err != nil {
			return err
		}
		if p.Status == Pending {
			_, err = exec(ctx, tx, "count attempt", countPaymentAttempt, p.ID, s.cfg.IdempotencyLease.Microseconds())
		}
		return err
	})
	if err != nil {
		return Response{}, err
	}
	switch c.state {
	case claimReplay:
		return *c.response, nil
	case claimMismatch, claimInFlight:
		return Response{}, claimError(c)
	}
	log := s.log.With("payment_id", p.ID, "order_id", p.OrderID)
	if c.isNew {
		log.Info("payment created", "amount", p.Amount, "currency", p.Currency, "card", in.Card)
	} else {
		log.Info("payment retried", "status", p.Status, "attempt", p.attempts)
	}
	if p.Status.Final() {
		// Settled meanwhile (by the reconciler): its answer is due now.
		dctx, cancel := afterCall(ctx)
		defer cancel()
		return s.settlePayment(dctx, key, c.token, p.ID, nil, render)
	}

	// Detached: a caller hanging up must not cut the call at an unknown
	// point. The client bounds it with PAYMENT_PROCESSOR_TIMEOUT.
	charge, err := s.proc.Charge(context.WithoutCancel(ctx), p.processorKey, ChargeRequest{
		Amount: p.Amount, Currency: p.Currency, Card: in.Card, Reference: p.OrderID.String(),
	})
	dctx, cancel := afterCall(ctx)
	defer cancel()
	var rejected *RejectedError
	switch {
	case errors.As(err, &rejected):
		return s.settlePayment(dctx, key, c.token, p.ID, &settlement{
			status: Failed, code: CodeCardDeclined, message: "the processor refused the card: " + rejected.Detail,
		}, render)
	case err != nil:
		return s.releasePayment(dctx, key, c.token, p, render, err)
	case charge.Status == ChargePending:
		return s.releasePayment(dctx, key, c.token, p, render, fmt.Errorf("charge %s is still being processed", charge.ID))
	}
	return s.settlePayment(dctx, key, c.token, p.ID, settlementOf(charge), render)
}

// settlement is the outcome of a charge or a refund.
type settlement struct {
	status    Status
	reference string
	code      string
	message   string
}

// settlementOf is the outcome of a processed charge.
func settlementOf(ch Charge) *settlement {
	if ch.Status == ChargeSucceeded {
		return &settlement{status: Succeeded, reference: ch.ID}
	}
	code := failureOf(ch.FailureCode)
	return &settlement{status: Failed, reference: ch.ID, code: code, message: failureMessages[code]}
}

// settlePayment records out (when not nil) on pending payment id, and
// stores and returns the answer the payment now deserves.
func (s *Service) settlePayment(ctx context.Context, key string, token, id uuid.UUID, out *settlement, render RenderPayment) (Response, error) {
	var (
		resp    Response
		settled bool
		stored  bool
		p       Payment
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if out != nil {
			settled, err = exec(ctx, tx, "settle payment", settlePaymentSQL, id, string(out.status), out.reference, out.code, out.message)
			if err != nil {
				return err
			}
		}
		if p, err = getPaymentWithRefunds(ctx, tx, id); err != nil {
			return err
		}
		resp = render(p)
		stored, err = exec(ctx, tx, "store answer", completeKeySQL, key, token, resp.Status, string(resp.Body))
		return err
	})
	if err != nil {
		return Response{}, fmt.Errorf("settle payment %s: %w", id, err)
	}
	resp.PaymentID = id
	log := s.log.With("payment_id", id, "order_id", p.OrderID)
	if settled {
		log.Info("payment settled", "status", p.Status, "failure_code", p.FailureCode, "processor_reference", p.ProcessorReference)
	}
	if !stored {
		// The lease ran out during the call and another request took the
		// key over: its answer will be stored, from the same payment.
		log.Warn("idempotency key lost before the answer was stored", "lease", s.cfg.IdempotencyLease.String())
	}
	return resp, nil
}

// releasePayment answers a payment whose outcome is unknown: it stays
// pending, its key is released so that a retry carries on at once, and the
// reconciler is asked to look soon.
func (s *Service) releasePayment(ctx context.Context, key string, token uuid.UUID, p Payment, render RenderPayment, cause error) (Response, error) {
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := exec(ctx, tx, "release key", releaseKeySQL, key, token); err != nil {
			return err
		}
		_, err := exec(ctx, tx, "schedule check", scheduleCheckPayment, p.ID)
		return err
	})
	if err != nil {
		return Response{}, fmt.Errorf("release payment %s: %w", p.ID, err)
	}
	logging.Of(ctx, s.log).Warn("payment outcome unknown; it stays pending until reconciled", "payment_id", p.ID, "order_id", p.OrderID, "error", cause)
	resp := render(p)
	resp.PaymentID = p.ID
	return resp, nil
}
