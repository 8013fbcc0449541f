package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// reserveFunc tries to reserve qty units of a product for a new order and
// reports whether it got them.
type reserveFunc func(ctx context.Context, orderID, productID uuid.UUID, qty int) (bool, error)

// raceResult is what a burst of concurrent reservations left behind.
type raceResult struct {
	stock     int // on_hand before the burst
	successes int // reservations that said yes
	onHand    int
	reserved  int
	heldUnits int // the units of the held reservations in the database
}

// violations lists every way r breaks the no-oversell rules: no more
// reservations succeed than there are units; reserving leaves on_hand
// alone; products.reserved counts exactly the units of the held
// reservations; nothing is negative and reserved never exceeds on_hand.
func (r raceResult) violations(attempts int) []string {
	var v []string
	if want := min(attempts, r.stock); r.successes != want {
		v = append(v, fmt.Sprintf("got %d successful reservations, want %d (stock %d, %d attempts)", r.successes, want, r.stock, attempts))
	}
	if r.onHand != r.stock {
		v = append(v, fmt.Sprintf("got on_hand %d, want %d (reserving must not move it)", r.onHand, r.stock))
	}
	if r.reserved != r.successes || r.heldUnits != r.successes {
		v = append(v, fmt.Sprintf("got reserved %d and %d units held by reservations, want both %d", r.reserved, r.heldUnits, r.successes))
	}
	if r.onHand < 0 || r.reserved < 0 || r.reserved > r.onHand {
		v = append(v, fmt.Sprintf("got on_hand %d reserved %d, want 0 <= reserved <= on_hand", r.onHand, r.reserved))
	}
	return v
}

// raceReservations puts a product with stock units on sale, fires attempts
// concurrent one-unit reservations at it (distinct orders) through
// reserve, all released at once, and reports what they left behind.
func raceReservations(t *testing.T, s *service, reserve reserveFunc, stock, attempts int) raceResult {
	t.Helper()
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: stock})
	var (
		start     = make(chan struct{})
		wg        sync.WaitGroup
		successes atomic.Int64
		errs      = make(chan error, attempts)
	)
	for range attempts {
		wg.Go(func() {
			<-start
			ok, err := reserve(t.Context(), uuid.New(), p.ID, 1)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				successes.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a reservation failed unexpectedly: %v", err)
	}
	r := raceResult{stock: stock, successes: int(successes.Load())}
	r.onHand, r.reserved = s.stock(t, p.ID)
	err := s.DB.QueryRow(t.Context(), `
SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l JOIN reservations r USING (order_id)
WHERE l.product_id = $1 AND r.status = 'held'`, p.ID).Scan(&r.heldUnits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// httpReserve reserves through the service's API: 201 is a yes, 409
// out-of-stock a no.
func httpReserve(s *service) reserveFunc {
	return func(ctx context.Context, orderID, productID uuid.UUID, qty int) (bool, error) {
		r, err := s.send(ctx, "POST", "/internal/reservations", "", reserveBody(orderID, 0, line{productID, qty}))
		switch {
		case err != nil:
			return false, err
		case r.Status == http.StatusCreated:
			return true, nil
		case r.Status == http.StatusConflict && r.Header.Get("Content-Type") == "application/problem+json":
			return false, nil
		}
		return false, fmt.Errorf("got status %d: %s", r.Status, r.Body)
	}
}

// readThenWriteReserve is the bug the service must not have, kept here (and
// only here) to prove that the race test can fail: it reads the stock,
// decides in Go, and writes back the number it computed. Between the read
// and the write, pg_sleep holds the window open that concurrent checkouts
// fall into in production, so the oversell is certain, not lucky.
func readThenWriteReserve(pool *pgxpool.Pool) reserveFunc {
	return func(ctx context.Context, orderID, productID uuid.UUID, qty int) (bool, error) {
		ok := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var onHand, reserved int
			if err := tx.QueryRow(ctx, `SELECT on_hand, reserved FROM products WHERE id = $1`, productID).Scan(&onHand, &reserved); err != nil {
				return err
			}
			if onHand-reserved < qty {
				return nil
			}
			if _, err := tx.Exec(ctx, `SELECT pg_sleep(0.1)`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE products SET reserved = $2 WHERE id = $1`, productID, reserved+qty); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO reservations (order_id, expires_at) VALUES ($1, now() + interval '15 minutes')`, orderID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES ($1, $2, $3)`, orderID, productID, qty); err != nil {
				return err
			}
			ok = true
			return nil
		})
		return ok, err
	}
}

// TestReserveRace is acceptance 1: 200 concurrent reservations for one
// product with stock 10 (and with stock 1) → exactly 10 (1) succeed, the
// counters stay consistent with the reservations, nothing goes negative.
func TestReserveRace(t *testing.T) {
	t.Parallel()
	const attempts = 200
	for _, stock := range []int{10, 1} {
		t.Run(fmt.Sprintf("stock %d", stock), func(t *testing.T) {
			t.Parallel()
			s := startService(t)
			r := raceReservations(t, s, httpReserve(s), stock, attempts)
			for _, v := range r.violations(attempts) {
				t.Error(v)
			}
		})
	}
}

// TestReadThenWriteOversells runs the same race and the same checks
// against the read-then-write variant, and requires them to fail: it
// proves that TestReserveRace can catch an oversell, so its passing means
// something.
func TestReadThenWriteOversells(t *testing.T) {
	t.Parallel()
	const attempts = 200
	for _, stock := range []int{10, 1} {
		t.Run(fmt.Sprintf("stock %d", stock), func(t *testing.T) {
			t.Parallel()
			s := startService(t)
			cfg, err := pgxpool.ParseConfig(s.Env["DATABASE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 50 // enough concurrent transactions to fall into the window
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			r := raceReservations(t, s, readThenWriteReserve(pool), stock, attempts)
			if r.successes <= stock {
				t.Errorf("got %d successful reservations for stock %d, want more: the read-then-write variant should oversell", r.successes, stock)
			}
			v := r.violations(attempts)
			if len(v) == 0 {
				t.Fatalf("the race checks found nothing wrong with the read-then-write variant (%+v): they cannot fail", r)
			}
			t.Logf("as intended, the read-then-write variant oversold: %+v; the checks said: %q", r, v)
		})
	}
}
