package checkout

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// RecoveryConfig is the recovery loop's part of the configuration.
type RecoveryConfig struct {
	// Interval is the pause between two passes (with ±20% jitter, so that
	// replicas started together do not pass together).
	Interval time.Duration
	// Age is how long an order must have stayed in its status before the
	// loop takes it: longer than any live checkout runs, so the loop only
	// meets orders nobody is working on.
	Age time.Duration
	// Batch is how many orders one pass takes.
	Batch int
	// StepTimeout bounds the work on one order.
	StepTimeout time.Duration
	// FlagAfter is how long an order may stay unfinished in one status
	// before the loop flags it for a person (DefaultFlagAfter when 0; at
	// least Age, as younger orders are not listed).
	FlagAfter time.Duration
}

// Recover runs the recovery loop until ctx ends: every Interval it lists
// the orders left in a non-final status (pending, reserved, paid,
// cancel_requested) for longer than Age and advances each one, and flags
// those still unfinished past FlagAfter. It is safe on every replica at
// once: each step is idempotent, the order's transitions decide who wins,
// and orders raises each flag once.
func (s *Saga) Recover(ctx context.Context, cfg RecoveryConfig) {
	log := s.log.Named("recovery")
	log.Info("recovery loop started", "interval", cfg.Interval, "age", cfg.Age, "batch", cfg.Batch)
	for {
		jitter := time.Duration(float64(cfg.Interval) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter):
		}
		n, err := s.RecoverOnce(ctx, cfg)
		if err != nil {
			log.Warn("recovery pass failed", "error", err)
		} else if n > 0 {
			log.Debug("recovery pass", "orders", n)
		}
	}
}

// maxPages bounds one pass: at most maxPages × Batch orders.
const maxPages = 10

// RecoverOnce makes one pass and returns how many orders it took. It walks
// the pages of the list, so that orders waiting on something (an unknown
// payment) at the head of the list do not hide the others.
func (s *Saga) RecoverOnce(ctx context.Context, cfg RecoveryConfig) (int, error) {
	log := s.log.Named("recovery")
	passID := "recovery-" + uuid.NewString()
	ctx = httpx.WithRequestID(ctx, passID)
	ctx = logging.WithContext(ctx, log.With("request_id", passID))
	flagAfter := max(cfg.FlagAfter, cfg.Age)
	if cfg.FlagAfter <= 0 {
		flagAfter = max(DefaultFlagAfter, cfg.Age)
	}
	age := cfg.Age.String()
	limit := cfg.Batch
	params := orders.ListOrdersToRecoverParams{OlderThan: &age, Limit: &limit}
	n := 0
	for range maxPages {
		lctx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
		resp, err := s.orders.ListOrdersToRecoverWithResponse(lctx, &params)
		cancel()
		if err := reply.Check(ctx, "orders", resp, err); err != nil {
			return n, err
		}
		if resp.JSON200 == nil {
			return n, nil
		}
		for _, o := range resp.JSON200.Items {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			octx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
			res := s.Advance(octx, o, nil)
			s.flagStuck(octx, res, flagAfter)
			cancel()
			n++
			log.Info("recovered order", "order_id", o.Id, "request_id", passID, "from", o.Status, "to", res.Order.Status, "done", res.Done, "waiting", errString(res.Wait))
		}
		if resp.JSON200.NextPageToken == nil {
			return n, nil
		}
		params.PageToken = resp.JSON200.NextPageToken
	}
	return n, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
