package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/backup/internal/dump"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/opensslenc"
	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

// TestDrillChecksTheDump: a dump taken while two sessions write carries
// the figures of its own snapshot, and the drill's psql restore of it
// matches them table by table; the same dump missing one row of
// order_lines fails the drill with a message naming that table; a dump
// with no figures (as written before they existed) still restores and the
// drill says it had nothing to compare.
func TestDrillChecksTheDump(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	c := testpg.NewCluster(t, testpg.Options{DB: "ledger"})
	schema(t, c)
	mustBackup(t, c, consul, nil, "task", "stanza")

	stop := writer(t, c)
	time.Sleep(500 * time.Millisecond)
	mustBackup(t, c, consul, nil, "task", "dump")
	r := backup(t, c, consul, nil, "task", "drill")
	writes := stop()
	if r.code != 0 {
		t.Fatalf("drill: exit %d, want 0\n%s", r.code, r.stderr)
	}
	dumped := record(t, consul, "ledger", "dump")
	rec := record(t, consul, "ledger", "drill")
	dc := rec.Drill.Dump
	if !rec.OK || dc == nil || dc.Outcome != records.DumpEqual || dc.Object != dumped.Repos[0].Object ||
		dc.SchemaDump != "orders:2,outbox:1" || dc.SchemaRestored != dc.SchemaDump {
		t.Fatalf("drill record: %s\ndump record: %s", pretty(rec), pretty(dumped))
	}
	rows := map[string]int64{}
	var total int64
	for _, tr := range dc.Tables {
		if !tr.Equal || tr.LiveRows != tr.RestoredRows || tr.LiveSum != tr.RestoredSum || tr.LiveSum == "" {
			t.Errorf("table %s: %+v", tr.Table, tr)
		}
		rows[tr.Table] = tr.LiveRows
		total += tr.LiveRows
	}
	if len(rows) != 3 || rows["public.orders"] <= 2000 || rows["public.order_lines"] == 0 || rows["public.schema_migrations"] != 3 {
		t.Fatalf("dump compared %v: want orders (more than the 2000 seeded), order_lines (written before the dump), schema_migrations", rows)
	}
	if d := dumped.Dumped; d == nil || d.Tables != 3 || d.Rows != total || d.Schema != dc.SchemaDump {
		t.Fatalf("dump record's figures %+v, want 3 tables, %d rows", d, total)
	}
	if writes < 20 {
		t.Fatalf("only %d writes during the dump and drill: the test did not write concurrently", writes)
	}
	live := figures(t, c)
	if live["public.orders"].Rows <= rows["public.orders"] {
		t.Fatalf("orders: %d rows live after the writers, %d in the dump: no write came after the dump's snapshot", live["public.orders"].Rows, rows["public.orders"])
	}
	t.Logf("%d writes; the dump holds %d orders, %d order lines; live now %d orders", writes, rows["public.orders"], rows["public.order_lines"], live["public.orders"].Rows)
	check := drillCheck(t, consul, "ledger")
	if want := "dump " + dc.Name + ": 3 tables equal"; check.Status != "passing" || !strings.Contains(check.Output, want) {
		t.Fatalf("check %+v, want passing with %q", check, want)
	}
	if entries, _ := os.ReadDir(c.Env["BACKUP_SCRATCH_DIR"]); len(entries) != 0 {
		t.Fatalf("scratch folder not removed: %v", entries)
	}

	// One data row of order_lines deleted from repo1's dump, in place.
	file, pass := dumped.Repos[0].Object, c.Env["PGBACKREST_REPO1_CIPHER_PASS"]
	script := decryptDump(t, file, pass)
	encryptDump(t, file, pass, dropFirstRow(t, script, "public.order_lines"))
	r = backup(t, c, consul, nil, "task", "drill")
	want := "public.order_lines: " + strconv.FormatInt(rows["public.order_lines"], 10) + " rows"
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, want) {
		t.Fatalf("drill over a dump missing a row: exit %d, want %d and a message naming %q\n%s", r.code, exitcode.Failed, want, r.stderr)
	}
	rec = record(t, consul, "ledger", "drill")
	if rec.OK || rec.Drill.Dump == nil || rec.Drill.Dump.Outcome != records.DumpFailed || !strings.Contains(rec.Drill.Dump.Error, want) ||
		!strings.Contains(rec.Drill.Dump.Error, strconv.FormatInt(rows["public.order_lines"]-1, 10)+" rows") {
		t.Fatalf("drill record: %s", pretty(rec))
	}
	for _, tr := range rec.Drill.Tables {
		if !tr.Equal {
			t.Errorf("the physical restore differs in %s: only the dump was tampered with", tr.Table)
		}
	}
	if len(rec.Drill.Tables) != 3 {
		t.Errorf("physical part compared %d tables, want 3 (it runs before the dump check)", len(rec.Drill.Tables))
	}
	if check := drillCheck(t, consul, "ledger"); check.Status != "critical" || !strings.Contains(check.Output, want) {
		t.Fatalf("check %+v, want critical naming %q", check, want)
	}

	// The same dump without its sums line: a dump of before the sums.
	i := strings.LastIndex(script, dump.SumsPrefix)
	if i < 0 || strings.Count(script[i:], "\n") != 1 {
		t.Fatalf("the dump's script does not end with its sums line:\n%s", script[max(0, len(script)-500):])
	}
	encryptDump(t, file, pass, script[:i])
	mustBackup(t, c, consul, nil, "task", "drill")
	rec = record(t, consul, "ledger", "drill")
	if dc := rec.Drill.Dump; !rec.OK || dc.Outcome != records.DumpNoSums || len(dc.Tables) != 0 || dc.SchemaRestored != "orders:2,outbox:1" {
		t.Fatalf("drill record: %s", pretty(rec))
	}
	if check := drillCheck(t, consul, "ledger"); check.Status != "passing" || !strings.Contains(check.Output, records.DumpNoSums) {
		t.Fatalf("check %+v, want passing and saying %q", check, records.DumpNoSums)
	}
}

func decryptDump(t *testing.T, file, pass string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain, err := opensslenc.NewReader(f, pass)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// encryptDump replaces file's content (its owner and mode stay).
func encryptDump(t *testing.T, file, pass, script string) {
	t.Helper()
	var buf bytes.Buffer
	enc, err := opensslenc.NewWriter(&buf, pass)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(enc)
	if _, err := io.WriteString(gz, script); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0); err != nil {
		t.Fatal(err)
	}
}

// dropFirstRow deletes the first data line of table's COPY block.
func dropFirstRow(t *testing.T, script, table string) string {
	t.Helper()
	lines := strings.SplitAfter(script, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "COPY "+table+" (") && i+1 < len(lines) && lines[i+1] != "\\.\n" {
			return strings.Join(append(lines[:i+1:i+1], lines[i+2:]...), "")
		}
	}
	t.Fatalf("no COPY block with rows for %s in the dump", table)
	return ""
}
