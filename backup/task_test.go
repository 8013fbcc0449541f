package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/backup/internal/archive"
	"github.com/mylittleshopping/shop/backup/internal/dump"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/pgsums"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

// figures measures every user table of the cluster's database.
func figures(t *testing.T, c *testpg.Cluster) map[string]pgsums.Figures {
	t.Helper()
	ctx := context.Background()
	conn := c.Conn(t, c.DB)
	if err := pgsums.Prepare(ctx, conn); err != nil {
		t.Fatal(err)
	}
	set, err := pgsums.Take(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return set.Tables
}

func chown(t *testing.T, c *testpg.Cluster, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if c.Cred != nil {
			if err := os.Chown(p, int(c.Cred.Uid), int(c.Cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDumpRestoresWithPsql: the dump, decrypted by `backup dump-cat` and
// replayed with psql into an empty PostgreSQL, gives the same row counts
// and checksums; the same file decrypts with the stock openssl binary;
// dumps older than the retention go, in both repositories.
func TestDumpRestoresWithPsql(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	c := testpg.NewCluster(t, testpg.Options{DB: "payment"})
	schema(t, c)
	c.Exec(t, "INSERT INTO orders (buyer, note) VALUES ('dump-buyer@example.test', 'quote '' and tab\t')")
	var planted []string
	for _, repo := range []string{"repo1", "repo2"} {
		dir := filepath.Join(c.Base, repo, "dump", "payment")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		old := filepath.Join(dir, "payment-20200101T000000Z.sql.gz.enc")
		other := filepath.Join(dir, "notes.txt")
		for _, f := range []string{old, other} {
			if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		chown(t, c, filepath.Join(c.Base, repo, "dump"), dir, old, other)
		planted = append(planted, old)
	}
	mustBackup(t, c, consul, nil, "task", "dump")
	rec := record(t, consul, "payment", "dump")
	if !rec.OK || len(rec.Repos) != 2 || rec.SizeBytes == 0 {
		t.Fatalf("dump record: %s", pretty(rec))
	}
	for i, old := range planted {
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Errorf("%s older than 7 days was kept", old)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(old), "notes.txt")); err != nil {
			t.Errorf("a file that is not a dump was deleted: %v", err)
		}
		if len(rec.Repos[i].Deleted) != 1 {
			t.Errorf("repo%d deleted %v, want the planted one", i+1, rec.Repos[i].Deleted)
		}
	}

	// Into an empty PostgreSQL with psql.
	script := mustBackup(t, c, consul, nil, "dump-cat", "latest").stdout
	if !strings.Contains(script, "CREATE TABLE public.orders") {
		t.Fatalf("dump-cat printed no SQL script:\n%.500s", script)
	}
	empty := testpg.NewCluster(t, testpg.Options{DB: "payment", NoArchive: true})
	psql := empty.Command(filepath.Join(testpg.Bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "payment")
	psql.Stdin = strings.NewReader(script)
	if out, err := psql.CombinedOutput(); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	live, restored := figures(t, c), figures(t, empty)
	if !reflect.DeepEqual(live, restored) {
		t.Fatalf("restored from the dump:\n%v\nlive:\n%v", restored, live)
	}
	// Its last line carries the same figures, for the drill to compare.
	last := script[strings.LastIndex(strings.TrimRight(script, "\n"), "\n")+1:]
	var sums pgsums.Set
	if !strings.HasPrefix(last, dump.SumsPrefix) || json.Unmarshal([]byte(strings.TrimPrefix(last, dump.SumsPrefix)), &sums) != nil {
		t.Fatalf("the script's last line is %q, want the sums", last)
	}
	if !reflect.DeepEqual(sums.Tables, live) || sums.Schema != "orders:2,outbox:1" {
		t.Fatalf("the dump's sums %+v, want live %v", sums, live)
	}
	if d := rec.Dumped; d == nil || d.Tables != len(live) || d.Rows != sums.Rows() {
		t.Fatalf("dump record's figures %+v, want %d tables, %d rows", d, len(live), sums.Rows())
	}
	if live["public.orders"].Rows != 2001 {
		t.Fatalf("orders: %d rows, want 2001", live["public.orders"].Rows)
	}

	// The stock openssl decrypts repo1's file with repo1's pass.
	file := rec.Repos[0].Object
	cmd := exec.Command("openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "10000", "-md", "sha256",
		"-in", file, "-pass", "env:PASS")
	cmd.Env = []string{"PASS=" + c.Env["PGBACKREST_REPO1_CIPHER_PASS"]}
	gz, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl enc -d: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != script || !strings.Contains(script, "dump-buyer@example.test") {
		t.Fatal("openssl's plaintext differs from dump-cat's")
	}
	// repo2's copy is under repo2's pass: dump-cat picks it by its folder.
	if got := mustBackup(t, c, consul, nil, "dump-cat", rec.Repos[1].Object).stdout; got != script {
		t.Fatal("repo2's copy differs")
	}
	if r := backup(t, c, consul, map[string]string{"PGBACKREST_REPO1_CIPHER_PASS": "wrong"}, "dump-cat", file); r.code == 0 {
		t.Fatal("dump-cat with a wrong pass succeeded")
	}
}

// TestInit: on an empty data folder the database job's prestart restores
// the latest backup, from repo2 when repo1 has none; with no backup
// anywhere it exits 3 (initdb); with repo1 empty and repo2 unreadable it
// refuses (5), and a data folder that holds a database is left alone.
func TestInit(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)

	none := testpg.NewStopped(t, testpg.Options{DB: "auth"})
	if r := backup(t, none, consul, nil, "task", "init"); r.code != exitcode.NoBackup || !strings.Contains(r.stderr, "no backup in repo1, repo2") {
		t.Fatalf("init with no backup: exit %d, want %d (initdb)\n%s", r.code, exitcode.NoBackup, r.stderr)
	}

	c := testpg.NewCluster(t, testpg.Options{DB: "auth"})
	schema(t, c)
	mustBackup(t, c, consul, nil, "task", "stanza")
	c.Exec(t, "INSERT INTO orders (buyer) SELECT 'after-backup' FROM generate_series(1, 321)")
	c.Archived(t)
	want := figures(t, c)
	c.Stop()

	// The host lost repo1 and the data folder.
	if err := os.RemoveAll(filepath.Join(c.Base, "repo1")); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(c.Base, "data2")
	c.Data, c.Env["PGBACKREST_PG1_PATH"] = fresh, fresh

	bad := map[string]string{"PGBACKREST_REPO2_CIPHER_PASS": "not-the-pass"}
	if r := backup(t, c, consul, bad, "task", "init"); r.code != exitcode.Unreachable || !strings.Contains(r.stderr, "refusing to initdb") {
		t.Fatalf("init with repo1 empty and repo2 unreadable: exit %d, want %d\n%s", r.code, exitcode.Unreachable, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(fresh, "PG_VERSION")); err == nil {
		t.Fatal("a database appeared")
	}

	mustBackup(t, c, consul, nil, "task", "init")
	rec := record(t, consul, "auth", "restore")
	if !rec.OK || rec.Restore.From != "repo2" || rec.Restore.Target != "latest" || !strings.HasSuffix(rec.Restore.Label, "F") {
		t.Fatalf("restore record: %s", pretty(rec))
	}
	c.Start()
	if got := figures(t, c); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	c.Stop()
	mustBackup(t, c, consul, nil, "task", "init") // a database: nothing to do
	if again := record(t, consul, "auth", "restore"); again.Started != rec.Started {
		t.Fatal("init restored over an existing database")
	}
}

// TestPointInTimeRestore: `task restore` to a timestamp returns exactly
// the rows committed before it.
func TestPointInTimeRestore(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	c := testpg.NewCluster(t, testpg.Options{DB: "pitr"})
	c.Exec(t, "CREATE TABLE events (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	mustBackup(t, c, consul, nil, "task", "stanza")
	for i := 0; i < 30; i++ {
		c.Exec(t, "INSERT INTO events DEFAULT VALUES")
	}
	time.Sleep(1100 * time.Millisecond)
	var target time.Time
	if err := c.Conn(t, c.DB).QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 30; i++ {
		c.Exec(t, "INSERT INTO events DEFAULT VALUES")
	}
	c.Archived(t)
	c.Stop()

	env := map[string]string{"BACKUP_RESTORE_TARGET_TIME": target.UTC().Format(time.RFC3339Nano), "BACKUP_RESTORE_REPO": "2"}
	mustBackup(t, c, consul, env, "task", "restore")
	rec := record(t, consul, "pitr", "restore")
	if !rec.OK || rec.Restore.From != "repo2" || rec.Restore.Target != env["BACKUP_RESTORE_TARGET_TIME"] {
		t.Fatalf("restore record: %s", pretty(rec))
	}
	c.Start()
	var n, max int
	var last time.Time
	if err := c.Conn(t, c.DB).QueryRow(context.Background(), "SELECT count(*), max(id), max(at) FROM events").Scan(&n, &max, &last); err != nil {
		t.Fatal(err)
	}
	if n != 30 || max != 30 || !last.Before(target) {
		t.Fatalf("restored %d rows up to id %d (last at %s), want exactly the 30 committed before %s", n, max, last, target)
	}
	if r := backup(t, c, consul, map[string]string{"BACKUP_RESTORE_TARGET_TIME": "yesterday"}, "task", "restore"); r.code != exitcode.Usage {
		t.Fatalf("a bad target time: exit %d, want %d", r.code, exitcode.Usage)
	}
}

// TestCheckArchive: the script check's line and exit statuses: passing
// after archiving, a warning when the RPO is above its limit, critical
// when archiving fails.
func TestCheckArchive(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	c := testpg.NewCluster(t, testpg.Options{DB: "checks"})
	mustBackup(t, c, consul, nil, "task", "stanza")
	c.Archived(t)
	read := func(r result) archive.Status {
		t.Helper()
		var s archive.Status
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("check-archive printed %q, want one line of JSON (%v)", r.stdout, err)
		}
		if strings.Contains(r.stderr, "backup:") {
			t.Fatalf("check-archive printed a message besides its JSON: %s", r.stderr)
		}
		return s
	}
	r := backup(t, c, nil, nil, "task", "check-archive")
	s := read(r)
	if r.code != 0 || s.LastArchivedWAL == "" || s.LastArchivedAt == nil || s.RPOSeconds > 90 {
		t.Fatalf("after archiving: exit %d, %+v", r.code, s)
	}
	for _, k := range []string{`"last_archived_wal"`, `"last_archived_at"`, `"failed_count"`, `"last_failed_at"`, `"rpo_seconds"`} {
		if !strings.Contains(r.stdout, k) {
			t.Errorf("no %s in %s", k, r.stdout)
		}
	}
	c.Exec(t, "CREATE TABLE t AS SELECT 1 AS x") // WAL past the last archived segment
	time.Sleep(2100 * time.Millisecond)
	r = backup(t, c, nil, map[string]string{"BACKUP_MAX_RPO": "1s"}, "task", "check-archive")
	if s = read(r); r.code != exitcode.Failed || s.RPOSeconds < 2 {
		t.Fatalf("RPO above the limit: exit %d, %+v, want %d", r.code, s, exitcode.Failed)
	}

	// repo1's archive becomes unwritable: archiving fails.
	arch := filepath.Join(c.Base, "repo1", "archive")
	if err := os.Chmod(arch, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(arch, 0o750) })
	c.Exec(t, "SELECT pg_switch_wal()")
	deadline := time.Now().Add(60 * time.Second)
	for {
		r = backup(t, c, nil, nil, "task", "check-archive")
		if s = read(r); s.Failing() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r.code != exitcode.Critical || s.LastFailedAt == nil {
		t.Fatalf("archiving failing: exit %d, %+v, want %d", r.code, s, exitcode.Critical)
	}
}
