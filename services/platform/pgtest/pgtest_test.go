package pgtest_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var set = pgdb.MigrationSet{Name: "notes", FS: fstest.MapFS{
	"0001_create_notes.sql": {Data: []byte("CREATE TABLE notes (body text NOT NULL)")},
}}

// TestDatabasesAreFreshAndIsolated: each test gets its own migrated
// database on one real server; what one writes, the other never sees.
func TestDatabasesAreFreshAndIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.New(t, set), pgtest.New(t, set)
	pgtest.Exec(t, a, "INSERT INTO notes VALUES ('only in a')")
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("got %d rows in b, want 0: databases are shared", n)
	}
	var dbA, dbB, fsync, version string
	_ = a.QueryRow(ctx, "SELECT current_database(), current_setting('fsync'), current_setting('server_version')").Scan(&dbA, &fsync, &version)
	_ = b.QueryRow(ctx, "SELECT current_database()").Scan(&dbB)
	if dbA == dbB {
		t.Fatalf("both tests got database %q", dbA)
	}
	if fsync != "off" {
		t.Errorf("got fsync=%s, want off (a throw-away server)", fsync)
	}
	t.Logf("real PostgreSQL %s, databases %s and %s", version, dbA, dbB)
}
