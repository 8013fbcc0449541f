package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/drill"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

// writer inserts and updates rows as fast as it can until stopped, so a
// drill runs against a database that never rests.
func writer(t *testing.T, c *testpg.Cluster) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, c.ConnString(c.DB))
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			defer conn.Close(context.Background())
			for ctx.Err() == nil {
				_, err := conn.Exec(ctx, `WITH ins AS (INSERT INTO orders (buyer, total, note) VALUES ('b' || floor(random()*100), (random()*10000)::int, repeat('x', 20)) RETURNING id)
					UPDATE orders SET total = total + 1, updated_at = clock_timestamp() WHERE id = (SELECT max(id) - 3 FROM orders)`)
				if err == nil {
					_, err = conn.Exec(ctx, `INSERT INTO order_lines (order_id, sku, qty) SELECT max(id), 'sku-' || (random()*50)::int, 1 FROM orders`)
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
				n.Add(1)
			}
		}()
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return n.Load()
	}
}

func schema(t *testing.T, c *testpg.Cluster) {
	t.Helper()
	c.Exec(t, `CREATE TABLE orders (id bigserial PRIMARY KEY, buyer text, total integer, note text,
		created_at timestamptz DEFAULT now(), updated_at timestamptz, amount numeric(12,2) DEFAULT 1.5, ratio double precision DEFAULT 0.1)`)
	c.Exec(t, `CREATE TABLE order_lines (id bigserial PRIMARY KEY, order_id bigint, sku text, qty int, raw bytea DEFAULT '\xdeadbeef', during interval DEFAULT '1 day 2 hours')`)
	c.Exec(t, `CREATE TABLE schema_migrations (set_name text, version int, name text, checksum text, applied_at timestamptz DEFAULT now(), PRIMARY KEY (set_name, version))`)
	c.Exec(t, `INSERT INTO schema_migrations (set_name, version, name, checksum) VALUES ('orders', 1, 'a', 'x'), ('orders', 2, 'b', 'y'), ('outbox', 1, 'c', 'z')`)
	c.Exec(t, `CREATE UNLOGGED TABLE scratchpad (v int)`)
	c.Exec(t, `INSERT INTO orders (buyer, total, note) SELECT 'b' || g, g, 'seed' FROM generate_series(1, 2000) g`)
	c.Exec(t, `INSERT INTO scratchpad SELECT generate_series(1, 10)`)
}

// TestDrillUnderConcurrentWrites: while two sessions write without pause,
// the drill's restore matches live exactly, table by table, and the
// Consul check passes; then a corrupted file in repo1 fails the drill with
// a message naming that file, and the check turns critical.
func TestDrillUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	c := testpg.NewCluster(t, testpg.Options{DB: "inventory"})
	// As deep as a Nomad allocation's volume: the scratch server's socket
	// would not fit in a unix socket's 107 bytes there.
	c.Env["BACKUP_SCRATCH_DIR"] = filepath.Join(c.Env["BACKUP_SCRATCH_DIR"], "cluster", "volumes", "inventory-db", strings.Repeat("d", 60))
	schema(t, c)
	mustBackup(t, c, consul, nil, "task", "stanza")
	socksBefore, _ := filepath.Glob("/tmp/drill-sock-*")

	stop := writer(t, c)
	time.Sleep(500 * time.Millisecond)
	r := backup(t, c, consul, nil, "task", "drill")
	writes := stop()
	if r.code != 0 {
		t.Fatalf("drill: exit %d, want 0\n%s", r.code, r.stderr)
	}
	rec := record(t, consul, "inventory", "drill")
	if !rec.OK || rec.Drill == nil || rec.Drill.SchemaLive != "orders:2,outbox:1" || rec.Drill.SchemaRestored != rec.Drill.SchemaLive {
		t.Fatalf("drill record: %s", pretty(rec))
	}
	tables := map[string]int64{}
	for _, tr := range rec.Drill.Tables {
		if !tr.Equal || tr.LiveRows != tr.RestoredRows || tr.LiveSum != tr.RestoredSum {
			t.Errorf("table %s: %+v", tr.Table, tr)
		}
		tables[tr.Table] = tr.LiveRows
	}
	if len(tables) != 3 || tables["public.orders"] <= 2000 || tables["public.order_lines"] == 0 {
		t.Fatalf("compared %v: want orders (more than the 2000 seeded), order_lines (written during the drill), schema_migrations; not the unlogged table", tables)
	}
	if writes < 20 {
		t.Fatalf("only %d writes during the drill: the test did not write concurrently", writes)
	}
	t.Logf("%d writes during the drill; orders %d rows", writes, tables["public.orders"])
	if dc := rec.Drill.Dump; dc == nil || dc.Outcome != records.DumpNone {
		t.Fatalf("dump check with no dump taken: %s, want %q", pretty(dc), records.DumpNone)
	}
	check := drillCheck(t, consul, "inventory")
	if check.Status != "passing" || !strings.Contains(check.Output, "passed") || !strings.Contains(check.Output, "dump: no dump yet") {
		t.Fatalf("check %+v, want passing, with no dump yet", check)
	}
	if entries, _ := os.ReadDir(c.Env["BACKUP_SCRATCH_DIR"]); len(entries) != 0 {
		t.Fatalf("scratch folder not removed: %v", entries)
	}
	if socks, _ := filepath.Glob("/tmp/drill-sock-*"); len(socks) > len(socksBefore) {
		t.Fatalf("socket folders left behind: %v", socks)
	}

	// Corrupt the orders table's file in repo1's backup.
	var relPath string
	if err := c.Conn(t, c.DB).QueryRow(context.Background(), "SELECT pg_relation_filepath('orders')").Scan(&relPath); err != nil {
		t.Fatal(err)
	}
	full := rec.Drill.Label
	victim := filepath.Join(c.Base, "repo1", "backup", "inventory", full, "pg_data", relPath+".zst")
	f, err := os.OpenFile(victim, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("the backup file of orders: %v", err)
	}
	if _, err := f.WriteAt([]byte("CORRUPTCORRUPTCORRUPT"), 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r = backup(t, c, consul, nil, "task", "drill")
	want := full + "/pg_data/" + relPath + ".zst"
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, want) {
		t.Fatalf("drill over a corrupted file: exit %d, want %d and a message naming %s\n%s", r.code, exitcode.Failed, want, r.stderr)
	}
	rec = record(t, consul, "inventory", "drill")
	if rec.OK || !strings.Contains(rec.Error, want) || rec.LastOK == nil {
		t.Fatalf("failed drill record: %s", pretty(rec))
	}
	check = drillCheck(t, consul, "inventory")
	if check.Status != "critical" || !strings.Contains(check.Output, want) {
		t.Fatalf("check %+v, want critical naming %s", check, want)
	}
	// repo2 is intact: a drill from it still passes.
	mustBackup(t, c, consul, nil, "task", "drill", "--repo", "2")
}

type checkState struct{ Status, Output string }

func drillCheck(t *testing.T, consul *testagents.Consul, db string) checkState {
	t.Helper()
	checks, err := consul.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := checks[drill.CheckID(db)]
	if !ok {
		t.Fatalf("no check %s", drill.CheckID(db))
	}
	if c.Name != "backup drill "+db || c.ServiceID != drill.CheckID(db) {
		t.Fatalf("check %+v", c)
	}
	return checkState{c.Status, c.Output}
}
