// Package task holds the pgBackRest tasks that run inside the database's
// Nomad jobs, as the postgres OS user next to the server and its volume:
//
//   - Backup: a full or incremental backup to every repository, each then
//     verified, recorded with pgBackRest's report of the new set;
//   - Init (the database job's prestart): on an empty data folder, restore
//     the latest backup from the first repository that has one, or report
//     that none exists so the job's shell runs initdb;
//   - Restore (the restore job, dispatched by `backup restore`): restore to
//     the latest or a point in time, over the existing data folder;
//   - Stanza (the database job's poststart): create the stanza, check
//     archiving, and take a first full backup into any repository that has
//     none, so that a new or restored database is covered at once.
//
// The dump, the drill and the archive check have their own packages.
package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/database"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// Config is the tasks' own configuration.
type Config struct {
	DB string `env:"BACKUP_DB" required:"true"`
	// ReadyTimeout bounds the wait for the server to accept connections
	// (and to end its recovery) before the stanza task gives up.
	ReadyTimeout time.Duration `env:"BACKUP_READY_TIMEOUT" default:"10m"`
	// RestoreTargetTime is the restore job's point in time (RFC 3339);
	// empty: the latest.
	RestoreTargetTime string `env:"BACKUP_RESTORE_TARGET_TIME"`
	// RestoreRepo is the restore job's repository: 1, 2 (or repo1, repo2);
	// empty: the first that has a suitable backup.
	RestoreRepo string `env:"BACKUP_RESTORE_REPO"`
}

// Validate checks the restore job's parameters.
func (c *Config) Validate() error {
	var errs []error
	if c.RestoreTargetTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, c.RestoreTargetTime); err != nil {
			errs = append(errs, fmt.Errorf("BACKUP_RESTORE_TARGET_TIME=%q: not an RFC 3339 time", c.RestoreTargetTime))
		}
	}
	if _, err := ParseRepo(c.RestoreRepo); err != nil {
		errs = append(errs, fmt.Errorf("BACKUP_RESTORE_REPO: %w", err))
	}
	return errors.Join(errs...)
}

// ParseRepo reads a repository number: "", "1", "2", "repo1", "repo2".
// Empty is 0: any.
func ParseRepo(s string) (int, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "repo")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || (n != 1 && n != 2) {
		return 0, fmt.Errorf("%q is not a repository (1, 2, repo1 or repo2)", s)
	}
	return n, nil
}

// Runner runs the tasks of one database.
type Runner struct {
	cfg   Config
	db    database.Config
	br    *pgbackrest.Client
	store *records.Store
	log   hclog.Logger
}

// New returns a runner.
func New(cfg Config, db database.Config, br *pgbackrest.Client, store *records.Store, log hclog.Logger) *Runner {
	return &Runner{cfg: cfg, db: db, br: br, store: store, log: log}
}

// Backup takes a backup of type typ (full or incr) into every repository
// and verifies each; the record holds each repository's result.
func (r *Runner) Backup(ctx context.Context, typ string) error {
	if typ != "full" && typ != "incr" {
		return exitcode.Errorf(exitcode.Usage, "backup type %q: full or incr", typ)
	}
	return r.backup(ctx, typ, r.br.Config().Repos())
}

func (r *Runner) backup(ctx context.Context, typ string, repos []pgbackrest.Repo) error {
	rec := &records.Record{DB: r.cfg.DB, Kind: typ, Started: time.Now().UTC()}
	var errs []error
	for _, repo := range repos {
		res := records.RepoResult{Repo: repo.Index}
		start := time.Now()
		err := r.br.Backup(ctx, repo.Index, typ)
		if err == nil {
			err = r.br.Verify(ctx, repo.Index)
		}
		if err == nil {
			var info pgbackrest.Info
			if info, err = r.br.Info(ctx, repo.Index); err == nil {
				if b, ok := info.Latest(); ok {
					set := b.Set()
					res.Backup = &set
					res.SizeBytes = set.RepoDelta
					if rec.SizeBytes == 0 {
						rec.SizeBytes = set.RepoDelta
					}
				}
			}
		}
		res.OK = err == nil
		if err != nil {
			res.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", repo.Name(), err))
			r.log.Error("backup failed", "repo", repo.Name(), "type", typ, "error", err)
		} else {
			r.log.Info("backup done", "repo", repo.Name(), "type", typ, "label", res.Backup.Label,
				"stored_bytes", res.Backup.RepoDelta, "took", time.Since(start).Round(time.Millisecond))
		}
		rec.Repos = append(rec.Repos, res)
	}
	err := errors.Join(errs...)
	rec.Finish(err)
	if perr := r.store.Put(ctx, rec); perr != nil {
		return exitcode.E(exitcode.Unreachable, errors.Join(err, perr))
	}
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("%s backup of %s: %w", typ, r.cfg.DB, err))
	}
	return nil
}

// HasDatabase reports whether the data folder holds a database.
func HasDatabase(pgPath string) (bool, error) {
	_, err := os.Stat(filepath.Join(pgPath, "PG_VERSION"))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// Init prepares the data folder before the server starts. A folder with a
// database is left alone. Else the latest backup of the first repository
// that has one is restored. When every repository answers that it has no
// backup, the result has exit status NoBackup: the job then runs initdb.
// When a repository cannot be read and none has a backup, the task fails
// instead (Unreachable): an empty database must never be created over a
// backup that exists in a repository that is down for a while.
func (r *Runner) Init(ctx context.Context) error {
	pgPath := r.br.Config().PGPath
	has, err := HasDatabase(pgPath)
	if err != nil {
		return exitcode.E(exitcode.Failed, err)
	}
	if has {
		r.log.Info("the data folder holds a database: nothing to restore", "path", pgPath)
		return nil
	}
	if err := emptyFolder(pgPath); err != nil {
		return exitcode.E(exitcode.Failed, err)
	}
	var unreadable []error
	var empty []string
	for _, repo := range r.br.Config().Repos() {
		info, err := r.br.Info(ctx, repo.Index)
		if err != nil {
			r.log.Warn("repository unreadable, trying the next", "repo", repo.Name(), "error", err)
			unreadable = append(unreadable, err)
			continue
		}
		latest, ok := info.Latest()
		if !ok {
			r.log.Info("no backup in repository", "repo", repo.Name(), "status", info.RepoStatus(repo.Index).Message)
			empty = append(empty, repo.Name())
			continue
		}
		r.log.Info("restoring the latest backup", "repo", repo.Name(), "label", latest.Label)
		err = r.restore(ctx, pgbackrest.RestoreOptions{Repo: repo.Index, Type: "default"}, repo.Name(), "latest")
		if err == nil {
			return nil
		}
		r.log.Error("restore failed, trying the next repository", "repo", repo.Name(), "error", err)
		unreadable = append(unreadable, fmt.Errorf("%s: %w", repo.Name(), err))
		if cerr := clearFolder(pgPath); cerr != nil {
			return exitcode.E(exitcode.Failed, errors.Join(err, cerr))
		}
	}
	if len(unreadable) > 0 {
		return exitcode.E(exitcode.Unreachable, fmt.Errorf(
			"no backup restored and not every repository could be read (no backup in: %s): %w; refusing to initdb over a backup that may exist",
			strings.Join(empty, ", "), errors.Join(unreadable...)))
	}
	return exitcode.Errorf(exitcode.NoBackup, "no backup in %s: initdb", strings.Join(empty, ", "))
}

// Restore is the restore job's task: the database is stopped; restore the
// backup (latest or BACKUP_RESTORE_TARGET_TIME, from BACKUP_RESTORE_REPO or
// the first repository that has a suitable one) over the data folder.
func (r *Runner) Restore(ctx context.Context) error {
	pgPath := r.br.Config().PGPath
	has, err := HasDatabase(pgPath)
	if err != nil {
		return exitcode.E(exitcode.Failed, err)
	}
	if !has {
		if err := emptyFolder(pgPath); err != nil {
			return exitcode.E(exitcode.Failed, err)
		}
	}
	repo, _ := ParseRepo(r.cfg.RestoreRepo) // checked by Validate
	o := pgbackrest.RestoreOptions{Repo: repo, Type: "default", Delta: has}
	target := "latest"
	if r.cfg.RestoreTargetTime != "" {
		t, _ := time.Parse(time.RFC3339Nano, r.cfg.RestoreTargetTime)
		o.Type, o.Target, o.TargetAction = "time", pgbackrest.TimeTarget(t), "promote"
		target = t.UTC().Format(time.RFC3339Nano)
	}
	from := "first repository with a suitable backup"
	if repo != 0 {
		from = "repo" + strconv.Itoa(repo)
	}
	return r.restore(ctx, o, from, target)
}

func (r *Runner) restore(ctx context.Context, o pgbackrest.RestoreOptions, from, target string) error {
	rec := &records.Record{DB: r.cfg.DB, Kind: records.Restore, Started: time.Now().UTC()}
	label, err := r.br.Restore(ctx, o)
	rec.Restore = &records.Restored{From: from, Label: label, Target: target}
	rec.Finish(err)
	rec.Restore.Took = rec.Duration
	if err == nil {
		r.log.Info("restored", "from", from, "label", label, "recovery_target", target, "took", rec.Duration.String())
	}
	if perr := r.store.Put(ctx, rec); perr != nil {
		// The data matters more than its record: a restored database
		// starts even when Consul is away.
		r.log.Error("restore record not written", "error", perr)
	}
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("restore %s from %s to %s: %w", r.cfg.DB, from, target, err))
	}
	return nil
}

// emptyFolder makes sure the data folder exists with PostgreSQL's mode and
// holds nothing, so a restore never mixes with stray files.
func emptyFolder(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("data folder %s has no PG_VERSION but is not empty (%s, …): refusing to restore into it", path, entries[0].Name())
	}
	return os.Chmod(path, 0o700)
}

// clearFolder removes what a failed restore left in the data folder.
func clearFolder(path string) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Stanza is the database job's poststart task: once the server accepts
// connections and has ended any recovery, create the stanza (idempotent),
// check that WAL reaches the repositories, and take a full backup into
// every repository that has none yet.
func (r *Runner) Stanza(ctx context.Context) error {
	err := database.WaitReady(ctx, r.db.ConnString(), r.cfg.ReadyTimeout, func(ctx context.Context, c *pgx.Conn) (bool, error) {
		var rec bool
		err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
		return !rec, err
	})
	if err != nil {
		return exitcode.E(exitcode.Unreachable, fmt.Errorf("database %s: %w", r.cfg.DB, err))
	}
	if err := r.br.StanzaCreate(ctx); err != nil {
		return exitcode.E(exitcode.Failed, err)
	}
	if err := r.br.Check(ctx); err != nil {
		return exitcode.E(exitcode.Failed, err)
	}
	var missing []pgbackrest.Repo
	for _, repo := range r.br.Config().Repos() {
		info, err := r.br.Info(ctx, repo.Index)
		if err != nil {
			return exitcode.E(exitcode.Unreachable, err)
		}
		if _, ok := info.Latest(); !ok {
			missing = append(missing, repo)
		}
	}
	if len(missing) == 0 {
		r.log.Info("stanza ready; every repository has a backup")
		return nil
	}
	r.log.Info("taking a first full backup", "repos", len(missing))
	return r.backup(ctx, "full", missing)
}

// Restored completes the record of the last restore with the point the
// recovery reached (the database job's start script reads it from the
// server, pg_last_xact_replay_timestamp(), before the recovery server
// stops), so that an operator sees to which point in time it came back.
func (r *Runner) Restored(ctx context.Context, recoveredTo string) error {
	rec, err := r.store.Get(ctx, r.cfg.DB, records.Restore)
	if err != nil {
		return exitcode.E(exitcode.Unreachable, err)
	}
	if rec == nil || rec.Restore == nil {
		return exitcode.Errorf(exitcode.Failed, "no restore of %s is recorded", r.cfg.DB)
	}
	rec.Restore.RecoveredTo = recoveredTo
	r.log.Info("recovered", "recovered_to", recoveredTo, "from", rec.Restore.From, "label", rec.Restore.Label)
	return r.store.Put(ctx, rec)
}
