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
// On each side every user table (ordinary, permanent; unlogged tables are
// empty after any restore and are skipped) gets its row count and an
// order-independent checksum: the sum over its rows of the first 64 bits
// of md5(row::text), as numeric. Both sessions fix the settings that shape
// a row's text (DateStyle, TimeZone, IntervalStyle, extra_float_digits,
// bytea_output, lc_monetary). The schema version (the highest migration of
// each set in pgdb's schema_migrations) must match as well.
//
// Then pg_switch_wal() closes the restore point's segment and the drill
// waits until pg_stat_archiver reports it archived; pgBackRest restores the
// latest backup into the scratch folder with --type=name --target=drill-<id>
// --target-action=promote; the scratch server starts on its own port and
// socket with archive_mode=off (it must never push WAL into the live
// stanza), replays WAL through archive-get until the restore point, and
// promotes. The drill also runs pgbackrest verify on the repository: a file
// whose checksum is wrong fails the drill with the file's name. The result
// goes to the record and to the Consul TTL check backup-drill-<db>, which
// also turns critical when no drill passed within its TTL.
package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/database"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
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
	environ []string
	store   *records.Store
	agent   *api.Agent
	log     hclog.Logger
}

// New returns a drill of database name; environ is the environment the
// scratch server runs with (pgBackRest's, for its archive-get).
func New(cfg Config, name string, db database.Config, br *pgbackrest.Client, environ []string, store *records.Store, agent *api.Agent, log hclog.Logger) *Drill {
	return &Drill{cfg: cfg, name: name, db: db, br: br, environ: environ, store: store, agent: agent, log: log}
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
	err := d.run(ctx, repo, rec.Drill)
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

// removeStale removes the folders of drills that were killed before they
// could clean up (the folder belongs to the drills alone).
func (d *Drill) removeStale() {
	stale, _ := filepath.Glob(filepath.Join(d.cfg.ScratchDir, "drill-*"))
	for _, dir := range stale {
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
	if rec.OK {
		return fmt.Sprintf("drill %s from repo%d passed: %d tables equal, schema %s, backup %s, restore point %s, took %s",
			rec.Finished.Format(time.RFC3339), dr.Repo, len(dr.Tables), dr.SchemaLive, dr.Label, dr.RestorePoint, rec.Duration)
	}
	return fmt.Sprintf("drill %s from repo%d FAILED: %s", rec.Finished.Format(time.RFC3339), dr.Repo, rec.Error)
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

func (d *Drill) run(ctx context.Context, repo int, dr *records.DrillResult) error {
	if err := d.br.Verify(ctx, repo); err != nil {
		dr.Verify = err.Error()
		return err
	}
	dr.Verify = "ok"
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

// Figures are one table's row count and checksum.
type Figures struct {
	Rows int64
	Sum  string
}

type liveState struct {
	tables  []string
	figures map[string]Figures
}

// sessionSettings fix every setting that changes a row's text.
var sessionSettings = []string{
	"SET DateStyle = 'ISO, YMD'",
	"SET TimeZone = 'UTC'",
	"SET IntervalStyle = 'postgres'",
	"SET extra_float_digits = 3",
	"SET bytea_output = 'hex'",
	"SET lc_monetary = 'C'",
}

func prepare(ctx context.Context, c *pgx.Conn) error {
	for _, s := range sessionSettings {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

const userTablesSQL = `
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY 1`

// UserTables lists the tables the drill compares, schema-qualified and quoted.
func UserTables(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, userTablesSQL)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Measure computes the figures of tables in c's current transaction.
func Measure(ctx context.Context, c *pgx.Conn, tables []string) (map[string]Figures, error) {
	out := make(map[string]Figures, len(tables))
	for _, t := range tables {
		var f Figures
		q := `SELECT count(*), coalesce(sum(('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0)::text FROM ONLY ` + t + ` AS r`
		if err := c.QueryRow(ctx, q).Scan(&f.Rows, &f.Sum); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t, err)
		}
		out[t] = f
	}
	return out, nil
}

// SchemaVersion returns the highest applied migration of each set in
// pgdb's schema_migrations, "auth:7,outbox:2"; "none" without the table.
func SchemaVersion(ctx context.Context, c *pgx.Conn) (string, error) {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return "", fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return "none", nil
	}
	var v string
	err := c.QueryRow(ctx, `SELECT coalesce(string_agg(set_name || ':' || v, ',' ORDER BY set_name), '')
		FROM (SELECT set_name, max(version) AS v FROM schema_migrations GROUP BY set_name) s`).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("schema version: %w", err)
	}
	return v, nil
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
	if err := prepare(ctx, a); err != nil {
		return nil, err
	}
	if err := prepare(ctx, b); err != nil {
		return nil, err
	}
	tables, err := UserTables(ctx, a)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	dr.RestorePoint = "drill-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(id)

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

	figures, err := Measure(ctx, b, tables)
	if err != nil {
		return nil, err
	}
	if dr.SchemaLive, err = SchemaVersion(ctx, b); err != nil {
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
func (d *Drill) restoreAndMeasure(ctx context.Context, repo int, point, dir string, tables []string) (map[string]Figures, string, string, error) {
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
	srv, err := d.startScratch(data, sock)
	if err != nil {
		return nil, "", label, err
	}
	defer srv.stop(d.log)
	conn, err := srv.waitPromoted(ctx, d.db.User, d.db.Name, d.cfg.RecoveryTimeout)
	if err != nil {
		return nil, "", label, err
	}
	defer conn.Close(context.Background())
	d.log.Info("scratch server recovered and promoted", "took", time.Since(start).Round(time.Millisecond))
	if err := prepare(ctx, conn); err != nil {
		return nil, "", label, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, "", label, err
	}
	figures, err := Measure(ctx, conn, tables)
	if err != nil {
		return nil, "", label, fmt.Errorf("restored: %w", err)
	}
	schema, err := SchemaVersion(ctx, conn)
	if err != nil {
		return nil, "", label, err
	}
	_, _ = conn.Exec(ctx, "COMMIT")
	return figures, schema, label, nil
}

type scratch struct {
	cmd    *exec.Cmd
	port   int
	sock   string
	log    string
	exited chan error
}

func (d *Drill) startScratch(data, sock string) (*scratch, error) {
	logPath := filepath.Join(filepath.Dir(data), "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(d.db.Bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(d.cfg.ScratchPort),
		"-c", "archive_mode=off", // never push WAL into the live stanza
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories="+sock,
		// No connections before the promotion: nothing reads a half
		// recovered server, and hot standby's checks (max_connections and
		// the like at least the live server's) do not apply.
		"-c", "hot_standby=off",
		"-c", "shared_buffers=32MB",
	)
	// The restored postgresql.auto.conf runs archive-get: with this data
	// folder as pg1-path, against the same repositories.
	cmd.Env = append(append([]string{}, d.environ...), "PGBACKREST_PG1_PATH="+data)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start scratch server: %w", err)
	}
	s := &scratch{cmd: cmd, port: d.cfg.ScratchPort, sock: sock, log: logPath, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	return s, nil
}

func (s *scratch) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitPromoted waits until the scratch server has ended its recovery.
func (s *scratch) waitPromoted(ctx context.Context, user, db string, timeout time.Duration) (*pgx.Conn, error) {
	ctx2, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cs := database.ConnString(s.sock, s.port, user, db)
	var last error
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			return nil, fmt.Errorf("scratch server exited (%v): %s", err, s.tail())
		default:
		}
		conn, err := pgx.Connect(ctx2, cs)
		if err == nil {
			var rec bool
			if err = conn.QueryRow(ctx2, "SELECT pg_is_in_recovery()").Scan(&rec); err == nil && !rec {
				return conn, nil
			}
			conn.Close(context.Background())
			if err == nil {
				err = errors.New("still in recovery")
			}
		}
		last = err
		select {
		case <-ctx2.Done():
			return nil, fmt.Errorf("scratch server not promoted after %s: %v: %s", timeout, last, s.tail())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stop shuts the scratch server down fast (SIGINT), killing it if it lingers.
func (s *scratch) stop(log hclog.Logger) {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		log.Warn("scratch server did not stop in 30s: killing it")
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}
