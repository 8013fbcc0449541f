package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/pgsums"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// dumpCheckDir starts the name of a dump check's folder in the scratch
// folder: dumpcheck-<drill id>.
const dumpCheckDir = "dumpcheck-"

// freshStartTimeout bounds the start of the dump check's new cluster,
// which has no recovery to run.
const freshStartTimeout = 2 * time.Minute

// checkDump restores the repository's latest dump with psql into a fresh
// cluster and compares it with the figures it carries (the package doc
// says why). The error is nil for the outcomes that do not fail a drill.
func (d *Drill) checkDump(ctx context.Context, repo int, id string) (*records.DumpCheck, error) {
	dc := &records.DumpCheck{}
	start := time.Now()
	err := d.restoreDump(ctx, repo, id, dc)
	if err != nil {
		dc.Outcome, dc.Error = records.DumpFailed, err.Error()
		if dc.Name != "" {
			return dc, fmt.Errorf("dump %s: %w", dc.Name, err)
		}
		return dc, fmt.Errorf("dump: %w", err)
	}
	d.log.Info("dump checked", "summary", dc.Summary(), "took", time.Since(start).Round(time.Millisecond))
	return dc, nil
}

func (d *Drill) restoreDump(ctx context.Context, repo int, id string, dc *records.DumpCheck) error {
	name, where, err := d.dumps.Latest(ctx, repo)
	if err != nil {
		return err
	}
	if name == "" {
		dc.Outcome = records.DumpNone
		return nil
	}
	dc.Name, dc.Object = name, where
	// The folder is the socket's too: its path is then no longer than the
	// physical drill's (a socket path has at most 107 bytes).
	sock := filepath.Join(d.cfg.ScratchDir, dumpCheckDir+id)
	defer os.RemoveAll(sock)
	data := filepath.Join(sock, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	// Trust is safe here: the only way in is the socket, in a folder only
	// this user can enter. The encoding is the shop's (UTF8, as the
	// database job's initdb); the C locale exists everywhere, and
	// collation changes neither row counts nor the order-free checksums.
	initdb := exec.CommandContext(ctx, filepath.Join(d.db.Bin, "initdb"), "-D", data, "-U", d.db.User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Env = d.environ
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, tail(out, 1000))
	}
	srv, err := startScratch(d.db.Bin, d.cfg.ScratchPort, data, sock, d.environ, "fsync=off")
	if err != nil {
		return err
	}
	defer srv.stop(d.log)
	admin, err := srv.waitOpen(ctx, d.db.User, "postgres", freshStartTimeout)
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.db.Name}.Sanitize()+" TEMPLATE template0")
	admin.Close(context.Background())
	if err != nil {
		return fmt.Errorf("create database %s: %w", d.db.Name, err)
	}

	start := time.Now()
	want, err := d.psql(ctx, srv, repo, name)
	if err != nil {
		return err
	}
	d.log.Info("dump restored with psql", "dump", where, "took", time.Since(start).Round(time.Millisecond))
	got, err := d.measureRestored(ctx, srv)
	if err != nil {
		return err
	}
	dc.SchemaRestored = got.Schema
	if want == nil {
		dc.Outcome = records.DumpNoSums
		return nil
	}
	if diffs := compareDump(want, got, dc); len(diffs) > 0 {
		return fmt.Errorf("restored with psql, differs from the dump's sums: %s", strings.Join(diffs, "; "))
	}
	dc.Outcome = records.DumpEqual
	return nil
}

// psql pipes the dump into psql as an operator would restore it, and
// returns the figures the dump carries (nil when it has none).
func (d *Drill) psql(ctx context.Context, srv *scratch, repo int, name string) (*pgsums.Set, error) {
	// Terse: an error's CONTEXT would quote a row of the dump into the
	// record and the Consul check, which are not encrypted.
	cmd := exec.CommandContext(ctx, filepath.Join(d.db.Bin, "psql"), "-X", "-q",
		"-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=terse", "--single-transaction", "--no-password",
		"--host="+srv.sock, "--port="+strconv.Itoa(srv.port), "--username="+d.db.User, "--dbname="+d.db.Name)
	cmd.Env = withoutLibpq(d.environ)
	stderr := &tailBuffer{max: 1000}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	// An *os.File, not an io.Pipe: once psql has stopped at an error,
	// writes fail with EPIPE instead of blocking forever.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("psql: %w", err)
	}
	sums, catErr := d.dumps.CatSums(ctx, name, repo, stdin)
	if catErr != nil && !errors.Is(catErr, syscall.EPIPE) {
		// The dump is unreadable: psql must not commit what it got so far.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, catErr
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return sums, catErr
}

// measureRestored takes the figures of every user table of the restored
// database: tables the dump's sums do not name count as differences too.
func (d *Drill) measureRestored(ctx context.Context, srv *scratch) (*pgsums.Set, error) {
	conn, err := srv.waitOpen(ctx, d.db.User, d.db.Name, freshStartTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := pgsums.Prepare(ctx, conn); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, err
	}
	set, err := pgsums.Take(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("restored from the dump: %w", err)
	}
	_, _ = conn.Exec(ctx, "COMMIT")
	return set, nil
}

// compareDump fills dc's tables, the union of both sides, and returns the
// differences, each naming its table.
func compareDump(want, got *pgsums.Set, dc *records.DumpCheck) []string {
	dc.SchemaDump, dc.SchemaRestored = want.Schema, got.Schema
	var diffs []string
	if want.Schema != got.Schema {
		diffs = append(diffs, fmt.Sprintf("schema version %q in the dump's sums, %q restored", want.Schema, got.Schema))
	}
	var names []string
	for t := range want.Tables {
		names = append(names, t)
	}
	for t := range got.Tables {
		if _, ok := want.Tables[t]; !ok {
			names = append(names, t)
		}
	}
	sort.Strings(names)
	for _, t := range names {
		w, inDump := want.Tables[t]
		g, restored := got.Tables[t]
		tr := records.TableResult{Table: t, LiveRows: w.Rows, RestoredRows: g.Rows, LiveSum: w.Sum, RestoredSum: g.Sum,
			Equal: inDump && restored && w == g}
		switch {
		case !restored:
			diffs = append(diffs, fmt.Sprintf("%s: %d rows in the dump's sums, no such table restored", t, w.Rows))
		case !inDump:
			diffs = append(diffs, fmt.Sprintf("%s: restored with %d rows, not in the dump's sums", t, g.Rows))
		case !tr.Equal:
			diffs = append(diffs, fmt.Sprintf("%s: %d rows sum %s in the dump's sums, %d rows sum %s restored", t, w.Rows, w.Sum, g.Rows, g.Sum))
		}
		dc.Tables = append(dc.Tables, tr)
	}
	return diffs
}

// withoutLibpq drops libpq's variables (PGHOST, PGPORT, PGDATABASE, …)
// from env: psql gets its target from its flags alone, so nothing in the
// job's environment can point it at the live server.
func withoutLibpq(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it: psql's error comes
// last, after any notices.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
