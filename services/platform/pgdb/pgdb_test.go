package pgdb_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var okSet = pgdb.MigrationSet{Name: "things", FS: os.DirFS("testdata/ok")}

func TestMigrationsAppliedInOrder(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, okSet)
	var note *string
	var name string
	if err := pool.QueryRow(context.Background(), `SELECT name, note FROM things WHERE id = 1`).Scan(&name, &note); err != nil {
		t.Fatal(err)
	}
	if name != "first" || note != nil {
		t.Fatalf("got (%q, %v), want (first, nil)", name, note)
	}
	var versions []int
	rows, _ := pool.Query(context.Background(), `SELECT version FROM schema_migrations WHERE set_name = 'things' ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0] != 1 || versions[1] != 2 {
		t.Fatalf("got versions %v, want [1 2]", versions)
	}
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t) // empty database
	log := logging.ForTest(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pgdb.Migrate(context.Background(), pool, log, okSet)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrate #%d: %v", i, err)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM things`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("got %d rows, want 1 (each migration applied once)", n)
	}
}

func TestMigrateRefusesChangedOrMisnamedFiles(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, okSet)
	log := logging.ForTest(t)
	changed := fstest.MapFS{
		"0001_create_things.sql":  {Data: []byte("CREATE TABLE things (id bigint);")},
		"0002_add_thing_note.sql": {Data: mustRead(t, "testdata/ok/0002_add_thing_note.sql")},
	}
	if err := pgdb.Migrate(context.Background(), pool, log, pgdb.MigrationSet{Name: "things", FS: changed}); err == nil {
		t.Fatal("got nil, want an error for a migration changed after it was applied")
	}
	bad := pgdb.MigrationSet{Name: "bad", FS: os.DirFS("testdata/bad")}
	if err := pgdb.Migrate(context.Background(), pool, log, bad); err == nil {
		t.Fatal("got nil, want an error for a misnamed migration")
	}
	dup := fstest.MapFS{"0001_a.sql": {Data: []byte("SELECT 1")}, "0001_b.sql": {Data: []byte("SELECT 1")}}
	if _, err := (pgdb.MigrationSet{Name: "dup", FS: dup}).Load(); err == nil {
		t.Fatal("got nil, want an error for two files with one version")
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	set := pgdb.MigrationSet{Name: "broken", FS: fstest.MapFS{
		"0001_half.sql": {Data: []byte("CREATE TABLE half (id int); SELECT * FROM no_such_table;")},
	}}
	if err := pgdb.Migrate(context.Background(), pool, logging.ForTest(t), set); err == nil {
		t.Fatal("got nil, want the migration's error")
	}
	var exists bool
	_ = pool.QueryRow(context.Background(), `SELECT to_regclass('half') IS NOT NULL`).Scan(&exists)
	if exists {
		t.Fatal("table half exists, want the failed migration rolled back whole")
	}
}

// TestStoreErrorsMapToKinds: a broken constraint is the store's to name
// (Constraints), in its own words, PostgreSQL's kept for the log; one it
// does not name stays an Internal error; no rows is NotFound.
func TestStoreErrorsMapToKinds(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, okSet)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO things (id, name) VALUES (2, 'first')`)
	if name, ok := pgdb.Violated(err); !ok || name != "things_name_key" {
		t.Errorf("Violated: got %q, %v, want things_name_key, true (err %v)", name, ok, err)
	}
	taken := apierr.E(apierr.Conflict, errors.New("a thing has this name already"))
	c := pgdb.Constraints{"things_name_key": taken}
	mapped := c.Map(err)
	if e, ok := apierr.As(mapped); !ok || e != taken || !errors.Is(mapped, err) {
		t.Errorf("Map: got %v, want the domain's error with PostgreSQL's behind it", mapped)
	}
	if name, _ := pgdb.Violated(mapped); name != "things_name_key" {
		t.Errorf("Violated after Map: got %q, want things_name_key", name)
	}
	if got := apierr.KindOf((pgdb.Constraints{"other": taken}).Map(err)); got != apierr.Internal {
		t.Errorf("a constraint no entry names: got kind %v, want internal", got)
	}
	if got := (pgdb.Constraints{"": taken}).Map(err); !errors.Is(got, taken) {
		t.Errorf(`the "" entry: got %v, want %v`, got, taken)
	}
	if other := errors.New("boom"); c.Map(other) != other {
		t.Errorf("an error that is no violation: got it changed, want it unchanged")
	}
	var name string
	err = pool.QueryRow(ctx, `SELECT name FROM things WHERE id = 42`).Scan(&name)
	if got := apierr.KindOf(err); got != apierr.NotFound {
		t.Errorf("no rows: got kind %v, want not-found", got)
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, okSet)
	ctx := context.Background()
	boom := errors.New("boom")
	err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO things (id, name) VALUES (3, 'third')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if n := count(t, pool); n != 1 {
		t.Fatalf("got %d rows after a rolled back tx, want 1", n)
	}
	if err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO things (id, name) VALUES (3, 'third')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool); n != 2 {
		t.Fatalf("got %d rows after a committed tx, want 2", n)
	}
}

func TestOpenWaitsAndGivesUp(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t, okSet)
	pool, err := pgdb.Open(context.Background(), pgdb.Config{URL: url, MaxConns: 2, ConnectTimeout: 5e9}, logging.ForTest(t))
	if err != nil {
		t.Fatalf("open a live database: %v", err)
	}
	pool.Close()
	_, err = pgdb.Open(context.Background(), pgdb.Config{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", ConnectTimeout: 3e8}, logging.ForTest(t))
	if err == nil {
		t.Fatal("got nil, want an error for a database that never answers")
	}
}

// A DATABASE_URL may name a service: Lookup turns its host into the
// database's address and port at each new connection, whatever port the
// URL says.
func TestLookupResolvesTheHostAndPort(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t, okSet))
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	u.Host = "orders-db.service.consul"
	var asked atomic.Int32
	cfg := pgdb.Config{URL: u.String(), MaxConns: 2, ConnectTimeout: 5e9, Lookup: func(_ context.Context, host string) ([]string, error) {
		asked.Add(1)
		if host != "orders-db.service.consul" {
			return nil, fmt.Errorf("asked for %q", host)
		}
		return []string{addr}, nil
	}}
	pool, err := pgdb.Open(context.Background(), cfg, logging.ForTest(t))
	if err != nil {
		t.Fatalf("open through Lookup: %v", err)
	}
	defer pool.Close()
	if err := pool.Ping(context.Background()); err != nil || asked.Load() == 0 {
		t.Fatalf("ping: %v; Lookup asked %d times, want at least once", err, asked.Load())
	}
	// Without Lookup the name means nothing to the system resolver.
	cfg.Lookup, cfg.ConnectTimeout = nil, 3e8
	if pool, err := pgdb.Open(context.Background(), cfg, logging.ForTest(t)); err == nil {
		pool.Close()
		t.Fatal("opened orders-db.service.consul without Lookup; want an error")
	}
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM things`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
