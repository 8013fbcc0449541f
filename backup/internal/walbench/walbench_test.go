// Package walbench measures what archiving the WAL with pgBackRest costs
// the shop's writes. It holds benchmarks only.
package walbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

// clients is the number of connections writing at once: enough to keep a
// server busy on the machines the shop runs on (2 cores) and to let commits
// share WAL flushes, as concurrent checkouts do.
const clients = 4

// products is the size of the catalogue the checkouts buy from: large
// enough that the clients seldom wait on one another's row lock.
const products = 5000

// schema is a small stand-in for the services' tables that a checkout
// writes to (inventory's products, orders' orders and order_lines,
// payment's payments): the same kinds of keys, indexes and checks, in one
// database. Stock is large enough for any number of iterations, so that
// every checkout succeeds.
const schema = `
CREATE TABLE products (
	id           bigint  PRIMARY KEY,
	name         text    NOT NULL,
	price_amount bigint  NOT NULL CHECK (price_amount > 0),
	currency     text    NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	stock        integer NOT NULL CHECK (stock >= 0)
);
CREATE TABLE orders (
	id           uuid        PRIMARY KEY,
	buyer_id     uuid        NOT NULL,
	status       text        NOT NULL CHECK (status IN ('pending', 'paid')),
	currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	total_amount bigint      NOT NULL CHECK (total_amount >= 0),
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_buyer_created_idx ON orders (buyer_id, created_at DESC, id DESC);
CREATE TABLE order_lines (
	order_id   uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	line_no    integer NOT NULL CHECK (line_no >= 1),
	product_id bigint  NOT NULL,
	name       text    NOT NULL,
	unit_price bigint  NOT NULL CHECK (unit_price >= 0),
	quantity   integer NOT NULL CHECK (quantity >= 1),
	line_total bigint  NOT NULL CHECK (line_total >= 0),
	PRIMARY KEY (order_id, line_no)
);
CREATE TABLE payments (
	id            uuid        PRIMARY KEY,
	order_id      uuid        NOT NULL,
	amount        bigint      NOT NULL CHECK (amount > 0),
	currency      text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	status        text        NOT NULL CHECK (status IN ('pending', 'succeeded')),
	card_last4    text        NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
	processor_key text        NOT NULL UNIQUE,
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_order_id_key ON payments (order_id);
INSERT INTO products (id, name, price_amount, currency, stock)
	SELECT i, 'product ' || i, 100 + i % 9000, 'EUR', 1000000000 FROM generate_series(1, 5000) i;
`

// The checkout's writes.
const (
	takeStockSQL     = `UPDATE products SET stock = stock - 1 WHERE id = $1 AND stock >= 1 RETURNING name, price_amount`
	insertOrderSQL   = `INSERT INTO orders (id, buyer_id, status, currency, total_amount) VALUES (gen_random_uuid(), gen_random_uuid(), 'pending', 'EUR', $1) RETURNING id`
	insertLineSQL    = `INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price, quantity, line_total) VALUES ($1, 1, $2, $3, $4, 1, $4)`
	insertPaymentSQL = `INSERT INTO payments (id, order_id, amount, currency, status, card_last4, processor_key)
	VALUES (gen_random_uuid(), $1::uuid, $2, 'EUR', 'pending', '4242', 'pay-' || $1::uuid)`
)

// BenchmarkCheckoutWrites measures what WAL archiving costs the checkout's
// writes: the same transactions on two PostgreSQL 15 servers set up as the
// database jobs run them (wal_level replica, fsync and synchronous_commit
// on, 64MB of shared buffers), one with archive_mode off, the other
// archiving with async `pgbackrest archive-push` into an encrypted posix
// repository (archive_timeout 60s, stanza created). One op is one
// checkout's transaction — take a unit of a product's stock, insert the
// order, its line and the payment, commit — with 4 connections writing at
// once, so ns/op is the inverse of the throughput that checkouts/s reports.
//
// The figure to read is the ratio of checkouts/s, archive=on over
// archive=off: the share of the write throughput that archiving leaves.
// pgBackRest is only called for a finished 16MB segment (or after
// archive_timeout), so archiving costs something only in runs that finish
// segments: walB/op × N says how much WAL a run wrote, archived-segs how
// many segments were archived while it ran. A checkout writes 1–3kB of
// WAL, so with the default -benchtime (a few thousand checkouts) no
// segment is finished, archived-segs is 0 and the ratio is noise; `make
// bench` runs it with -benchtime 20s, which archives a few segments per
// run.
//
// Both servers stay up and the runs alternate, off, on, off, on… (rounds
// of them), so that the machine's noise falls on both sides alike; the
// ratio printed at the end is over the sums of every round.
// Target: on/off ≥ 0.95.
func BenchmarkCheckoutWrites(b *testing.B) {
	servers := []*server{newServer(b, false), newServer(b, true)}
	names := []string{"archive=off", "archive=on"}
	var n [2]int
	var secs [2]float64
	for range rounds {
		for i, s := range servers {
			// The function runs with growing b.N: the last run is the one
			// reported.
			var lastN int
			var lastSecs float64
			b.Run(names[i], func(b *testing.B) {
				s.bench(b)
				lastN, lastSecs = b.N, b.Elapsed().Seconds()
			})
			n[i] += lastN
			secs[i] += lastSecs
		}
	}
	if n[0] > 0 && n[1] > 0 {
		off, on := float64(n[0])/secs[0], float64(n[1])/secs[1]
		fmt.Printf("archive on/off: %.3f (%.0f vs %.0f checkouts/s, %d alternated rounds)\n", on/off, on, off, rounds)
	}
}

// rounds is how many times each side runs, alternately.
const rounds = 3

// server is one database with the schema and the clients' connections.
type server struct {
	cluster *testpg.Cluster
	conns   []*pgx.Conn
	probe   *pgx.Conn // reads the WAL position and the archiver's counters
}

// newServer starts a server with archiving on or off, and stops it when
// b ends.
func newServer(b *testing.B, archive bool) *server {
	b.Helper()
	c := testpg.NewCluster(b, testpg.Options{
		Repo2:     map[string]string{}, // one repository
		NoArchive: !archive,
		// testpg runs fsync=off for speed; here commits wait for the disk,
		// as in production, so the ratio is that of real commits.
		Settings: []string{"fsync=on", "synchronous_commit=on", "shared_buffers=64MB", "archive_timeout=60"},
	})
	if archive {
		if out, err := c.Command("pgbackrest", "stanza-create").CombinedOutput(); err != nil {
			b.Fatalf("stanza-create: %v\n%s", err, out)
		}
		c.Archived(b) // archive-push works before anything is measured
	}
	c.Exec(b, schema)
	// Both servers start the measurement from a checkpoint: the same full
	// page images to write.
	c.Exec(b, "CHECKPOINT")
	s := &server{cluster: c, probe: c.Conn(b, c.DB)}
	for range clients {
		s.conns = append(s.conns, c.Conn(b, c.DB))
	}
	return s
}

// bench runs b.N checkouts, spread over the clients.
func (s *server) bench(b *testing.B) {
	ctx := context.Background()
	before := s.stats(b)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, conn := range s.conns {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for next.Add(1) <= int64(b.N) {
				if err := checkout(ctx, conn, 1+r.Int64N(products)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	after := s.stats(b)
	if failed := after.failed - before.failed; failed > 0 {
		b.Errorf("%d archive-push calls failed while measuring\n%s", failed, s.cluster.PGBackRestLog())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
	b.ReportMetric(float64(after.wal-before.wal)/float64(b.N), "walB/op")
	b.ReportMetric(float64(after.archived-before.archived), "archived-segs")
}

// checkout is the writes of one checkout of one unit of product id, in one
// transaction.
func checkout(ctx context.Context, conn *pgx.Conn, id int64) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var name string
		var price int64
		if err := tx.QueryRow(ctx, takeStockSQL, id).Scan(&name, &price); err != nil {
			return fmt.Errorf("take stock of %d: %w", id, err)
		}
		var order pgtype.UUID
		if err := tx.QueryRow(ctx, insertOrderSQL, price).Scan(&order); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if _, err := tx.Exec(ctx, insertLineSQL, order, id, name, price); err != nil {
			return fmt.Errorf("insert order line: %w", err)
		}
		if _, err := tx.Exec(ctx, insertPaymentSQL, order, price); err != nil {
			return fmt.Errorf("insert payment: %w", err)
		}
		return nil
	})
}

// stats is what a server has written and archived so far.
type stats struct {
	wal              int64 // bytes of WAL since 0/0
	archived, failed int64 // archive_command calls that succeeded, failed
}

func (s *server) stats(b *testing.B) stats {
	b.Helper()
	var st stats
	err := s.probe.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint,
		archived_count, failed_count FROM pg_stat_archiver`).Scan(&st.wal, &st.archived, &st.failed)
	if err != nil {
		b.Fatalf("stats: %v", err)
	}
	return st
}
