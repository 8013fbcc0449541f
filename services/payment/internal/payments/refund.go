package payments

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// CodeRefundRefused is the failure code of a refund the processor refused.
const CodeRefundRefused = "refund-refused"

// RenderRefund turns a refund into the answer a request gets.
type RenderRefund func(Refund) Response

// Refund refunds amount of payment paymentID, idempotently on key, as
// Create pays. The amount is reserved on the payment by a conditional
// update in the claim's transaction: concurrent refunds can never together
// exceed what was captured, and a refund whose outcome is unknown keeps its
// amount reserved until it is settled.
func (s *Service) Refund(ctx context.Context, key string, paymentID uuid.UUID, amount int64, render RenderRefund) (Response, error) {
	fp := refundFingerprint(paymentID, amount)
	id, err := uuid.NewV7()
	if err != nil {
		return Response{}, err
	}
	var (
		c        claim
		r        Refund
		chargeID string
	)
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if c, err = s.claimKey(ctx, tx, key, opCreateRefund, fp, paymentID, &id); err != nil || c.state != claimOwned {
			return err
		}
		lease := s.cfg.IdempotencyLease.Microseconds()
		if c.isNew {
			if err := reserveRefund(ctx, tx, paymentID, amount); err != nil {
				return err
			}
			if _, err := exec(ctx, tx, "insert refund", insertRefundSQL, id, paymentID, amount, processorKey("refund", id), lease); err != nil {
				return err
			}
		}
		if r, err = getRefund(ctx, tx, *c.refundID, true); err != nil {
			return err
		}
		if !c.isNew && r.Status == RefundPending {
			if _, err := exec(ctx, tx, "count attempt", countRefundAttempt, r.ID, lease); err != nil {
				return err
			}
		}
		p, err := getPayment(ctx, tx, paymentID, false)
		chargeID = p.ProcessorReference
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
	if c.isNew {
		logging.Of(ctx, s.log).Info("refund created", "refund_id", r.ID, "payment_id", paymentID, "amount", amount)
	}
	if r.Status != RefundPending {
		dctx, cancel := afterCall(ctx)
		defer cancel()
		return s.settleRefund(dctx, key, c.token, r.ID, nil, render)
	}

	ref, err := s.proc.Refund(context.WithoutCancel(ctx), r.processorKey, RefundRequest{ChargeID: chargeID, Amount: r.Amount})
	dctx, cancel := afterCall(ctx)
	defer cancel()
	var rejected *RejectedError
	switch {
	case errors.As(err, &rejected):
		return s.settleRefund(dctx, key, c.token, r.ID, &settlement{
			status: Status(RefundFailed), code: CodeRefundRefused, message: "the processor refused the refund: " + rejected.Detail,
		}, render)
	case err != nil:
		return s.releaseRefund(dctx, key, c.token, r, render, err)
	}
	return s.settleRefund(dctx, key, c.token, r.ID, &settlement{status: Status(RefundSucceeded), reference: ref.ID}, render)
}

// reserveRefund reserves amount on payment id, or says why it cannot.
func reserveRefund(ctx context.Context, tx pgx.Tx, id uuid.UUID, amount int64) error {
	_, err := scanPayment(tx.QueryRow(ctx, reserveRefundSQL, id, amount))
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	p, err := getPayment(ctx, tx, id, false)
	if err != nil {
		return err
	}
	if p.Status == Pending || p.Status == Failed {
		return apierr.WithCode(apierr.Conflict, "payment-not-captured",
			fmt.Errorf("payment %s is %s: only a captured payment can be refunded", id, p.Status))
	}
	left := p.Amount - p.AmountRefunded - p.refundReserved
	return apierr.WithCode(apierr.Conflict, "refund-exceeds-captured",
		fmt.Errorf("refund of %d exceeds what is left to refund of payment %s: %d of %d captured (%d refunded, %d being refunded)",
			amount, id, left, p.Amount, p.AmountRefunded, p.refundReserved))
}

// settleRefund records out (when not nil) on pending refund id and its
// payment, and stores and returns the answer the refund now deserves.
func (s *Service) settleRefund(ctx context.Context, key string, token, id uuid.UUID, out *settlement, render RenderRefund) (Response, error) {
	var (
		resp            Response
		settled, stored bool
		r               Refund
	)
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if out != nil {
			if settled, err = exec(ctx, tx, "settle refund", settleRefundSQL, id, string(out.status), out.reference, out.code, out.message); err != nil {
				return err
			}
		}
		if r, err = getRefund(ctx, tx, id, false); err != nil {
			return err
		}
		resp = render(r)
		stored, err = exec(ctx, tx, "store answer", completeKeySQL, key, token, resp.Status, string(resp.Body))
		return err
	})
	if err != nil {
		return Response{}, fmt.Errorf("settle refund %s: %w", id, err)
	}
	resp.PaymentID = r.PaymentID
	log := s.log.With("refund_id", id, "payment_id", r.PaymentID)
	if settled {
		log.Info("refund settled", "status", r.Status, "amount", r.Amount, "failure_code", r.FailureCode)
	}
	if !stored {
		log.Warn("idempotency key lost before the answer was stored", "lease", s.cfg.IdempotencyLease.String())
	}
	return resp, nil
}

// releaseRefund answers a refund whose outcome is unknown, as
// releasePayment does.
func (s *Service) releaseRefund(ctx context.Context, key string, token uuid.UUID, r Refund, render RenderRefund, cause error) (Response, error) {
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := exec(ctx, tx, "release key", releaseKeySQL, key, token); err != nil {
			return err
		}
		_, err := exec(ctx, tx, "schedule check", scheduleCheckRefund, r.ID)
		return err
	})
	if err != nil {
		return Response{}, fmt.Errorf("release refund %s: %w", r.ID, err)
	}
	logging.Of(ctx, s.log).Warn("refund outcome unknown; it stays pending until reconciled", "refund_id", r.ID, "payment_id", r.PaymentID, "error", cause)
	resp := render(r)
	resp.PaymentID = r.PaymentID
	return resp, nil
}
