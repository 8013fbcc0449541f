package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// SweepExpired expires every held reservation past its TTL and returns its
// stock, and reports how many it expired. Each batch is one transaction:
// the status change and the stock returned commit together or not at all.
// Any number of sweepers (goroutines, instances) may run at once: a batch
// is claimed with FOR UPDATE SKIP LOCKED and the status change is guarded,
// so each reservation is expired, and its stock returned, exactly once.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepBatch(ctx)
		total += n
		if err != nil || n < s.cfg.SweepBatch {
			return total, err
		}
	}
}

func (s *Service) sweepBatch(ctx context.Context) (int, error) {
	var expired []uuid.UUID
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, expireDueSQL, s.cfg.SweepBatch)
		if err != nil {
			return err
		}
		if expired, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil || len(expired) == 0 {
			return err
		}
		lines, err := collectLines(tx.Query(ctx, sumReservationLinesSQL, expired))
		if err != nil {
			return err
		}
		return moveStock(ctx, tx, releaseStockSQL, lines)
	})
	if err != nil {
		return 0, fmt.Errorf("sweep expired reservations: %w", err)
	}
	if len(expired) > 0 {
		s.log.Info("reservations expired", "count", len(expired), "by", "sweeper")
	}
	return len(expired), nil
}

// RunSweeper sweeps at once and then every SweepInterval until ctx is
// done. A failed sweep is logged and retried at the next tick: the sweeper
// never gives up, and a reservation keeps its stock at most about one
// interval past its TTL while the database is up.
func (s *Service) RunSweeper(ctx context.Context) {
	s.log.Info("sweeper started", "interval", s.cfg.SweepInterval.String())
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.SweepExpired(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep failed; retrying at the next tick", "error", err)
		}
		select {
		case <-ctx.Done():
			s.log.Info("sweeper stopped")
			return
		case <-t.C:
		}
	}
}
