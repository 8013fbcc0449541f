// Package drill restores the latest backup of a database into a scratch
// server and proves it holds exactly the live data as of a recovery point.
//
// # Why the comparison is exact
//
// The live database keeps changing while the drill runs, so the drill fixes
// a point that both sides can be read at, with two sessions on the live
// server:
//
//	A: BEGIN ISOLATION LEVEL REPEATABLE READ;
//	A: LOCK TABLE <every user table> IN SHARE MODE;
//	A: SELECT pg_export_snapshot(), pg_create_restore_point('drill-<id>'), pg_current_wal_lsn();
//	B: BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '<snapshot>';
//	A: COMMIT;
//
// SHARE conflicts with the ROW EXCLUSIVE lock every INSERT, UPDATE and
// DELETE takes, so once A holds the locks no transaction has uncommitted
// changes to a user table, and none can make any until A commits. LOCK does
// not take A's snapshot (PostgreSQL takes it at the first query, the
// SELECT), so the snapshot sees every transaction that committed before the
// locks were granted; and a committing transaction writes its commit record
// to WAL before it becomes visible and releases its locks, so those are
// exactly the transactions whose commit records precede the restore point
// in WAL. Recovery with recovery_target_name stops at that restore point:
// it replays exactly those commits. Session B reads the live data in A's
// snapshot after the locks are gone (writes are paused only while A holds
// them: a few milliseconds), so the two sides show the same rows.
//
// On each side every user table gets its row count and checksum, and the
// schema version is read, as package pgsums describes.
//
// Then pg_switch_wal() closes the restore point's segment and the drill
// waits until pg_stat_archiver reports it archived; pgBackRest restores the
// latest backup into the scratch folder with --type=name --target=drill-<id>
// --target-action=promote; the scratch server starts on its own port and
// socket with archive_mode=off (it must never push WAL into the live
// stanza), replays WAL through archive-get until the restore point, and
// promotes. The drill also runs pgbackrest verify on the repository: a file
// whose checksum is wrong fails the drill with the file's name.
//
// # The dump
//
// Then, whatever the physical part's outcome, the drill restores the same
// repository's latest dump the way an operator would: into a fresh
// cluster (initdb) in the scratch folder on the same port, its socket in
// that folder only, with `psql -X -v ON_ERROR_STOP=1 --single-transaction`
// into an empty database of the same name. The dump carries the figures
// of the snapshot it was taken in (package dump says how), so the restored
// database must hold exactly those tables with exactly those figures and
// schema version, and no other user table. The drill fails when the dump
// cannot be read, psql fails or a figure differs. A repository with no dump
// yet, or a dump written before dumps carried figures (it is still
// restored), is reported as such and fails nothing.
//
// The result goes to the record and to the Consul TTL check
// backup-drill-<db>, which also turns critical when no drill passed
// within its TTL.
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/database"
	"github.com/mylittleshopping/shop/backup/internal/dump"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
	"github.com/mylittleshopping/shop/backup/internal/pgsums"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// Config is the drill's scratch server and limits.
type Config struct {
	ScratchPort int    `env:"BACKUP_SCRATCH_PORT"`
	ScratchDir  string `env:"BACKUP_SCRATCH_DIR"`
	// CheckTTL is how long a drill's result stands in Consul: with no
	// newer drill the check turns critical (overdue).
	CheckTTL time.Duration `env:"BACKUP_DRILL_TTL" default:"26h"`
	// LockTimeout bounds the wait for the SHARE locks, during which
	// writers queue behind the drill.
	LockTimeout time.Duration `env:"BACKUP_DRILL_LOCK_TIMEOUT" default:"30s"`
	// ArchiveTimeout bounds the wait for the restore point's WAL segment
	// to reach the repositories.
	ArchiveTimeout time.Duration `env:"BACKUP_DRILL_ARCHIVE_TIMEOUT" default:"5m"`
	// RecoveryTimeout bounds the scratch server's recovery.
	RecoveryTimeout time.Duration `env:"BACKUP_DRILL_RECOVERY_TIMEOUT" default:"30m"`
}

// Drill runs restore drills of one database.
type Drill struct {
	cfg     Config
	name    string
	db      database.Config
	br      *pgbackrest.Client
	dumps   *dump.Dumper
	environ []string
	store   *records.Store
	agent   *api.Agent
	log     hclog.Logger
}

// New returns a drill of database name; environ is the environment the
// scratch servers run with (pgBackRest's, for its archive-get), dumps
// reads the repository's dumps.
func New(cfg Config, name string, db database.Config, br *pgbackrest.Client, dumps *dump.Dumper, environ []string, store *records.Store, agent *api.Agent, log hclog.Logger) *Drill {
	return &Drill{cfg: cfg, name: name, db: db, br: br, dumps: dumps, environ: environ, store: store, agent: agent, log: log}
}

// CheckID is the Consul check of the drills of db.
func CheckID(db string) string { return "backup-drill-" + db }

// Run runs one drill from repository repo (0: repo1) and records it.
func (d *Drill) Run(ctx context.Context, repo int) error {
	if repo == 0 {
		repo = 1
	}
	if _, err := d.br.Config().Repo(repo); err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	if d.cfg.ScratchPort == 0 || d.cfg.ScratchDir == "" {
		return exitcode.Errorf(exitcode.Usage, "the drill needs BACKUP_SCRATCH_PORT and BACKUP_SCRATCH_DIR")
	}
	d.removeStale()
	rec := &records.Record{DB: d.name, Kind: records.Drill, Started: time.Now().UTC(), Drill: &records.DrillResult{Repo: repo}}
	id := newID(rec.Started)
	err := d.run(ctx, repo, id, rec.Drill)
	// The dump is checked whatever became of the physical restore: it is
	// the other way back, and most needed when the first one fails.
	dc, derr := d.checkDump(ctx, repo, id)
	rec.Drill.Dump = dc
	switch {
	case err == nil:
		err = derr
	case derr != nil:
		err = fmt.Errorf("%w; %w", err, derr)
	}
	rec.Finish(err)
	rec.SizeBytes = 0
	summary := Summary(rec)
	if err != nil {
		d.log.Error("drill failed", "summary", summary)
	} else {
		d.log.Info("drill passed", "summary", summary)
	}
	var errs []error
	if perr := d.store.Put(ctx, rec); perr != nil {
		errs = append(errs, perr)
	}
	if cerr := d.publish(rec.OK, summary); cerr != nil {
		errs = append(errs, cerr)
	}
	if len(errs) > 0 {
		return exitcode.E(exitcode.Unreachable, errors.Join(append([]error{err}, errs...)...))
	}
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("drill of %s: %w", d.name, err))
	}
	return nil
}

// newID names a drill's restore point and scratch folders: the time and
// a random part, as two drills of one second must not meet.
func newID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// removeStale removes the folders of drills that were killed before they
// could clean up (the folder belongs to the drills alone).
func (d *Drill) removeStale() {
	stale, _ := filepath.Glob(filepath.Join(d.cfg.ScratchDir, "drill-*"))
	more, _ := filepath.Glob(filepath.Join(d.cfg.ScratchDir, dumpCheckDir+"*"))
	for _, dir := range append(stale, more...) {
		d.log.Warn("removing the folder of an interrupted drill", "path", dir)
		if err := os.RemoveAll(dir); err != nil {
			d.log.Warn("could not remove it", "path", dir, "error", err)
		}
	}
}

// Summary is the one line the Consul check shows (at most 1000 bytes).
func Summary(rec *records.Record) string {
	line := strings.Join(strings.Fields(summary(rec)), " ")
	if len(line) > 1000 {
		line = line[:997] + "..."
	}
	return line
}

func summary(rec *records.Record) string {
	dr := rec.Drill
	var head string
	if rec.OK {
		head = fmt.Sprintf("drill %s from repo%d passed: %d tables equal, schema %s, backup %s, restore point %s, took %s",
			rec.Finished.Format(time.RFC3339), dr.Repo, len(dr.Tables), dr.SchemaLive, dr.Label, dr.RestorePoint, rec.Duration)
	} else {
		head = fmt.Sprintf("drill %s from repo%d FAILED: %s", rec.Finished.Format(time.RFC3339), dr.Repo, rec.Error)
	}
	// A failed dump check is in the error already.
	if dc := dr.Dump; dc != nil && dc.Outcome != records.DumpFailed {
		head += "; " + dc.Summary()
	}
	return head
}

func (d *Drill) publish(ok bool, output string) error {
	id := CheckID(d.name)
	// The check hangs on a service of its own: a critical node check would
	// turn every service on the node critical.
	if err := d.agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: "backup-drill", Tags: []string{d.name}, Meta: map[string]string{"db": d.name},
	}); err != nil {
		return fmt.Errorf("register service %s: %w", id, err)
	}
	if err := d.agent.CheckRegister(&api.AgentCheckRegistration{
		ID: id, Name: "backup drill " + d.name, ServiceID: id,
		Notes:             "backup task drill: restore into a scratch server, compare with live; critical when failed or older than its TTL",
		AgentServiceCheck: api.AgentServiceCheck{TTL: d.cfg.CheckTTL.String()},
	}); err != nil {
		return fmt.Errorf("register check %s: %w", id, err)
	}
	status := api.HealthPassing
	if !ok {
		status = api.HealthCritical
	}
	if err := d.agent.UpdateTTL(id, output, status); err != nil {
		return fmt.Errorf("update check %s: %w", id, err)
	}
	return nil
}

func (d *Drill) run(ctx context.Context, repo int, id string, dr *records.DrillResult) error {
	if err := d.br.Verify(ctx, repo); err != nil {
		dr.Verify = err.Error()
		return err
	}
	dr.Verify = "ok"
	dr.RestorePoint = "drill-" + id
	live, err := d.snapshot(ctx, dr)
	if err != nil {
		return err
	}
	idDir := filepath.Join(d.cfg.ScratchDir, dr.RestorePoint)
	defer os.RemoveAll(idDir)
	restored, schema, label, err := d.restoreAndMeasure(ctx, repo, dr.RestorePoint, idDir, live.tables)
	dr.Label = label
	if err != nil {
		return err
	}
	dr.SchemaRestored = schema
	var diffs []string
	if dr.SchemaLive != dr.SchemaRestored {
		diffs = append(diffs, fmt.Sprintf("schema version %q live, %q restored", dr.SchemaLive, dr.SchemaRestored))
	}
	for _, t := range live.tables {
		l, r := live.figures[t], restored[t]
		tr := records.TableResult{Table: t, LiveRows: l.Rows, RestoredRows: r.Rows, LiveSum: l.Sum, RestoredSum: r.Sum}
		tr.Equal = l == r
		if !tr.Equal {
			diffs = append(diffs, fmt.Sprintf("%s: %d rows sum %s live, %d rows sum %s restored", t, l.Rows, l.Sum, r.Rows, r.Sum))
		}
		dr.Tables = append(dr.Tables, tr)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("restored data differs from live at %s: %s", dr.RestorePoint, strings.Join(diffs, "; "))
	}
	return nil
}

type liveState struct {
	tables  []string
	figures map[string]pgsums.Figures
}

// snapshot fixes the restore point and measures the live side in the
// snapshot that matches it (the package doc says why this is exact).
func (d *Drill) snapshot(ctx context.Context, dr *records.DrillResult) (*liveState, error) {
	a, err := d.db.Connect(ctx)
	if err != nil {
		return nil, exitcode.E(exitcode.Unreachable, err)
	}
	defer a.Close(context.Background())
	b, err := d.db.Connect(ctx)
	if err != nil {
		return nil, exitcode.E(exitcode.Unreachable, err)
	}
	defer b.Close(context.Background())
	if err := pgsums.Prepare(ctx, a); err != nil {
		return nil, err
	}
	if err := pgsums.Prepare(ctx, b); err != nil {
		return nil, err
	}
	tables, err := pgsums.UserTables(ctx, a)
	if err != nil {
		return nil, err
	}

	if _, err := a.Exec(ctx, "SET lock_timeout = "+strconv.FormatInt(d.cfg.LockTimeout.Milliseconds(), 10)); err != nil {
		return nil, err
	}
	if _, err := a.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, err
	}
	defer a.Exec(context.Background(), "ROLLBACK") // a no-op after COMMIT
	lockStart := time.Now()
	if len(tables) > 0 {
		if _, err := a.Exec(ctx, "LOCK TABLE "+strings.Join(tables, ", ")+" IN SHARE MODE"); err != nil {
			return nil, fmt.Errorf("lock the tables (writers are queued while waiting): %w", err)
		}
	}
	var snap string
	err = a.QueryRow(ctx, "SELECT pg_export_snapshot(), pg_create_restore_point($1)::text, pg_current_wal_lsn()::text",
		dr.RestorePoint).Scan(&snap, new(string), &dr.LSN)
	if err != nil {
		return nil, fmt.Errorf("restore point: %w", err)
	}
	if _, err := b.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, err
	}
	defer b.Exec(context.Background(), "ROLLBACK")
	if _, err := b.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snap+"'"); err != nil {
		return nil, fmt.Errorf("import snapshot: %w", err)
	}
	if _, err := a.Exec(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	d.log.Info("restore point created", "name", dr.RestorePoint, "lsn", dr.LSN, "tables", len(tables),
		"writes_paused", time.Since(lockStart).Round(time.Microsecond))

	figures, err := pgsums.Measure(ctx, b, tables)
	if err != nil {
		return nil, err
	}
	if dr.SchemaLive, err = pgsums.SchemaVersion(ctx, b); err != nil {
		return nil, err
	}
	if _, err := b.Exec(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	if err := d.waitArchived(ctx, a, dr.LSN); err != nil {
		return nil, err
	}
	return &liveState{tables: tables, figures: figures}, nil
}

// waitArchived closes the WAL segment holding lsn and waits until the
// archiver has pushed it (archive-push, async or not, reports success only
// once the segment is in the repositories): once closed, a segment is
// archived when its .ready file is gone from pg_wal/archive_status.
// pg_stat_archiver's last_archived_wal cannot tell: it may name a
// backup's history file pushed after later segments.
func (d *Drill) waitArchived(ctx context.Context, c *pgx.Conn, lsn string) error {
	var seg string
	if err := c.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn)", lsn).Scan(&seg); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
		return fmt.Errorf("switch wal: %w", err)
	}
	deadline := time.Now().Add(d.cfg.ArchiveTimeout)
	for {
		var waiting bool
		var failed string
		err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_ls_archive_statusdir() WHERE name = $1 || '.ready'),
			coalesce((SELECT last_failed_wal FROM pg_stat_archiver), '')`, seg).Scan(&waiting, &failed)
		if err != nil {
			return fmt.Errorf("archive status: %w", err)
		}
		if !waiting {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("segment %s not archived after %s (last failed %q)", seg, d.cfg.ArchiveTimeout, failed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// restoreAndMeasure restores to the restore point into dir, runs the
// scratch server until it has promoted, and measures it.
func (d *Drill) restoreAndMeasure(ctx context.Context, repo int, point, dir string, tables []string) (map[string]pgsums.Figures, string, string, error) {
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, p := range []string{data, sock} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, "", "", err
		}
	}
	start := time.Now()
	label, err := d.br.Restore(ctx, pgbackrest.RestoreOptions{
		Repo: repo, PGPath: data, Type: "name", Target: point, TargetAction: "promote", ArchiveOff: true,
	})
	if err != nil {
		return nil, "", "", err
	}
	d.log.Info("restored into the scratch folder", "label", label, "took", time.Since(start).Round(time.Millisecond))
	// The restored postgresql.auto.conf runs archive-get: with this data
	// folder as pg1-path, against the same repositories.
	env := append(append([]string{}, d.environ...), "PGBACKREST_PG1_PATH="+data)
	srv, err := startScratch(d.db.Bin, d.cfg.ScratchPort, data, sock, env,
		// No connections before the promotion: nothing reads a half
		// recovered server, and hot standby's checks (max_connections and
		// the like at least the live server's) do not apply.
		"hot_standby=off")
	if err != nil {
		return nil, "", label, err
	}
	defer srv.stop(d.log)
	conn, err := srv.waitOpen(ctx, d.db.User, d.db.Name, d.cfg.RecoveryTimeout)
	if err != nil {
		return nil, "", label, err
	}
	defer conn.Close(context.Background())
	d.log.Info("scratch server recovered and promoted", "took", time.Since(start).Round(time.Millisecond))
	if err := pgsums.Prepare(ctx, conn); err != nil {
		return nil, "", label, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, "", label, err
	}
	figures, err := pgsums.Measure(ctx, conn, tables)
	if err != nil {
		return nil, "", label, fmt.Errorf("restored: %w", err)
	}
	schema, err := pgsums.SchemaVersion(ctx, conn)
	if err != nil {
		return nil, "", label, err
	}
	_, _ = conn.Exec(ctx, "COMMIT")
	return figures, schema, label, nil
}
