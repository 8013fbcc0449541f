package payments

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RunReconciler settles pending payments and refunds until ctx ends: every
// PAYMENT_RECONCILE_INTERVAL it asks the processor, by the key each was sent
// with, what became of them. It only ever asks; it never charges, so it
// cannot charge twice. Errors are logged and retried at the next round.
func (s *Service) RunReconciler(ctx context.Context) {
	s.log.Info("reconciler started", "interval", s.cfg.ReconcileInterval.String())
	s.every(ctx, s.cfg.ReconcileInterval, func(ctx context.Context) {
		if _, err := s.ReconcileOnce(ctx); err != nil {
			s.log.Warn("reconcile round failed; retrying next round", "error", err)
		}
	})
	s.log.Info("reconciler stopped")
}

// ReconcileOnce asks the processor about the due pending payments and
// refunds (a batch of each) and returns how many it settled.
func (s *Service) ReconcileOnce(ctx context.Context) (int, error) {
	settled := 0
	ds, err := claimDue(ctx, s.pool, claimDuePayments, s.cfg.ReconcileInterval, s.cfg.ReconcileBatch)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if s.reconcilePayment(ctx, d) {
			settled++
		}
	}
	ds, err = claimDue(ctx, s.pool, claimDueRefunds, s.cfg.ReconcileInterval, s.cfg.ReconcileBatch)
	if err != nil {
		return settled, err
	}
	for _, d := range ds {
		if s.reconcileRefund(ctx, d) {
			settled++
		}
	}
	return settled, nil
}

func (s *Service) reconcilePayment(ctx context.Context, d due) bool {
	log := s.log.With("payment_id", d.id)
	ch, err := s.proc.FindCharge(ctx, d.processorKey)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.giveUp(ctx, log, "payment", giveUpPaymentSQL, d)
	case err != nil:
		log.Warn("cannot ask the processor about a pending payment; retrying next round", "error", err)
		return false
	case ch.Status == ChargePending:
		log.Debug("charge still being processed", "processor_reference", ch.ID)
		return false
	}
	out := settlementOf(ch)
	ok, err := exec(ctx, s.pool, "settle payment", settlePaymentSQL, d.id, string(out.status), out.reference, out.code, out.message)
	if err != nil {
		log.Warn("cannot settle a reconciled payment; retrying next round", "error", err)
		return false
	}
	if ok {
		log.Info("payment reconciled", "status", out.status, "failure_code", out.code, "processor_reference", out.reference)
	}
	return ok
}

func (s *Service) reconcileRefund(ctx context.Context, d due) bool {
	log := s.log.With("refund_id", d.id)
	ref, err := s.proc.FindRefund(ctx, d.processorKey)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.giveUp(ctx, log, "refund", givePendingRefundUpSQL, d)
	case err != nil:
		log.Warn("cannot ask the processor about a pending refund; retrying next round", "error", err)
		return false
	}
	ok, err := exec(ctx, s.pool, "settle refund", settleRefundSQL, d.id, string(RefundSucceeded), ref.ID, "", "")
	if err != nil {
		log.Warn("cannot settle a reconciled refund; retrying next round", "error", err)
		return false
	}
	if ok {
		log.Info("refund reconciled", "status", RefundSucceeded, "processor_reference", ref.ID)
	}
	return ok
}

// giveUp marks failed a payment or refund the processor has no record of,
// once its last attempt is PAYMENT_RECONCILE_GIVE_UP_AFTER old and no
// other attempt started since the reconciler looked (the SQL checks both).
func (s *Service) giveUp(ctx context.Context, log hclog.Logger, what, sql string, d due) bool {
	ok, err := exec(ctx, s.pool, "give up "+what, sql, d.id, d.attempts, CodeNotProcessed, failureMessages[CodeNotProcessed], s.cfg.GiveUpAfter.Microseconds())
	if err != nil {
		log.Warn("cannot give up on a "+what+"; retrying next round", "error", err)
		return false
	}
	if ok {
		log.Warn(what+" never reached the processor; marked failed", "failure_code", CodeNotProcessed, "after", s.cfg.GiveUpAfter.String())
	} else {
		log.Debug("processor has no record yet", "what", what)
	}
	return ok
}

// RunCleanup deletes the idempotency keys older than
// PAYMENT_IDEMPOTENCY_RETENTION (at least 24h) every
// PAYMENT_IDEMPOTENCY_CLEANUP_INTERVAL, until ctx ends.
func (s *Service) RunCleanup(ctx context.Context) {
	s.every(ctx, s.cfg.CleanupInterval, func(ctx context.Context) {
		n, err := s.CleanupOnce(ctx)
		switch {
		case err != nil:
			s.log.Warn("idempotency key clean-up failed; retrying next round", "error", err)
		case n > 0:
			s.log.Info("expired idempotency keys deleted", "count", n, "retention", s.cfg.IdempotencyRetention.String())
		}
	})
}

// CleanupOnce deletes the expired keys (none in flight) and returns how
// many.
func (s *Service) CleanupOnce(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteExpiredKeys, s.cfg.IdempotencyRetention.Microseconds())
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// every runs fn at once and then every interval until ctx ends.
func (s *Service) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
