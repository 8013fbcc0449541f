// Command backup drives the shop's backups: pgBackRest full and
// incremental backups, encrypted SQL dumps, restore drills and restores.
// Its `task …` subcommands run inside Nomad tasks next to PostgreSQL; the
// others run from an operator's machine through Nomad's and Consul's APIs.
// `backup help` lists them with their environment and exit statuses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	capi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	napi "github.com/hashicorp/nomad/api"

	"github.com/mylittleshopping/shop/backup/internal/archive"
	"github.com/mylittleshopping/shop/backup/internal/database"
	"github.com/mylittleshopping/shop/backup/internal/drill"
	"github.com/mylittleshopping/shop/backup/internal/dump"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/operator"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/task"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/metrics"
)

// TaskConfig is the configuration of the task subcommands and dump-cat:
// pgBackRest's own environment, the database's, and the tasks'.
type TaskConfig struct {
	PGBackRest pgbackrest.Config
	DB         database.Config
	Task       task.Config
	Dump       dump.Config
	Drill      drill.Config
	LogLevel   string `env:"LOG_LEVEL" default:"info"`
}

// CheckConfig is check-archive's: the database only, so the Nomad script
// check needs no more than libpq's variables.
type CheckConfig struct {
	DB      database.Config
	Archive archive.Config
}

// MetricsConfig is task metrics': the database whose records it reports,
// the schedules they are judged by (the same variables Terraform renders
// the periodic jobs with; an empty one: that kind is not scheduled), and
// where it serves /metrics.
type MetricsConfig struct {
	DB        string        `env:"BACKUP_DB" required:"true"`
	Addr      string        `env:"BACKUP_METRICS_ADDR" required:"true"`
	FullCron  string        `env:"BACKUP_FULL_CRON" default:""`
	IncrCron  string        `env:"BACKUP_INCR_CRON" default:""`
	DumpCron  string        `env:"BACKUP_DUMP_CRON" default:""`
	DrillCron string        `env:"BACKUP_DRILL_CRON" default:""`
	Slack     time.Duration `env:"BACKUP_STATUS_SLACK" default:"1h"`
}

// OperatorConfig is the operator subcommands'; Nomad's and Consul's
// addresses and tokens come from their own variables (NOMAD_ADDR,
// NOMAD_TOKEN, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, …) through the API
// packages' DefaultConfig.
type OperatorConfig struct {
	Operator operator.Config
	LogLevel string `env:"LOG_LEVEL" default:"info"`
}

func main() {
	log := logging.New("backup", os.Stderr, os.Getenv("LOG_LEVEL"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log, os.Args[1:], os.Stdout, os.LookupEnv, os.Environ())
	stop()
	if err != nil && !exitcode.IsQuiet(err) {
		fmt.Fprintf(os.Stderr, "backup: %v\n", err)
	}
	os.Exit(exitcode.Of(err))
}

// run dispatches the subcommand in args. lookupEnv and environ are the
// process's environment, read here and nowhere below.
func run(ctx context.Context, log hclog.Logger, args []string, stdout io.Writer, lookupEnv func(string) (string, bool), environ []string) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return exitcode.Errorf(exitcode.Usage, "no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "task":
		if len(rest) == 0 {
			return exitcode.Errorf(exitcode.Usage, "task: which one? (backup, dump, drill, check-archive, metrics, init, restore, stanza)")
		}
		switch rest[0] {
		case "check-archive":
			return checkArchive(ctx, log, rest[1:], stdout, lookupEnv)
		case "metrics":
			return serveMetrics(ctx, log, rest[1:], lookupEnv)
		}
		return runTask(ctx, log, rest[0], rest[1:], lookupEnv, environ)
	case "dump-cat":
		return runTask(ctx, log, cmd, rest, lookupEnv, environ, stdout)
	case "status", "run", "drill", "restore":
		return runOperator(ctx, log, cmd, rest, stdout, lookupEnv)
	}
	return exitcode.Errorf(exitcode.Usage, "unknown command %q (see backup help)", cmd)
}

func usageErr(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitcode.E(exitcode.Usage, err)
}

// parse parses flags anywhere among the arguments and returns the others.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func checkArchive(ctx context.Context, log hclog.Logger, args []string, stdout io.Writer, lookupEnv func(string) (string, bool)) error {
	if _, err := parse(newFlags("check-archive"), args); err != nil {
		return err
	}
	var cfg CheckConfig
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	conn, err := cfg.DB.Connect(ctx)
	if err != nil {
		return exitcode.E(exitcode.Unreachable, err)
	}
	defer conn.Close(context.Background())
	return archive.Check(ctx, cfg.Archive, conn, stdout)
}

// serveMetrics serves the database's backup records on /metrics until ctx
// ends: the series of the BackupLate alert (nomad/metrics.nomad.hcl).
func serveMetrics(ctx context.Context, log hclog.Logger, args []string, lookupEnv func(string) (string, bool)) error {
	if _, err := parse(newFlags("metrics"), args); err != nil {
		return err
	}
	var cfg MetricsConfig
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	log = log.Named("metrics").With("db", cfg.DB)
	consul, err := capi.NewClient(capi.DefaultConfig())
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	schedules := map[string]string{}
	for kind, spec := range map[string]string{records.Full: cfg.FullCron, records.Incr: cfg.IncrCron, records.Dump: cfg.DumpCron, records.Drill: cfg.DrillCron} {
		if spec == "" {
			continue
		}
		if _, ok := records.Allowed(spec, time.Now(), 0); !ok {
			return exitcode.Errorf(exitcode.Usage, "the %s schedule %q is not a cron expression", kind, spec)
		}
		schedules[kind] = spec
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(records.NewStore(consul).Collector(cfg.DB, schedules, cfg.Slack, time.Now))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, log))
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	log.Info("serving /metrics", "addr", ln.Addr().String(), "schedules", schedules)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func runTask(ctx context.Context, log hclog.Logger, name string, args []string, lookupEnv func(string) (string, bool), environ []string, stdout ...io.Writer) error {
	fs := newFlags(name)
	typ := fs.String("type", "", "backup type: full or incr")
	repoFlag := fs.String("repo", "", "repository: 1 or 2")
	positional, err := parse(fs, args)
	if err != nil {
		return err
	}
	repo, err := task.ParseRepo(*repoFlag)
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	var cfg TaskConfig
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	log = log.Named(name).With("db", cfg.Task.DB)
	if name != "dump-cat" {
		logging.Starting(log, config.Fields(&cfg)...)
	}
	consul, err := capi.NewClient(capi.DefaultConfig())
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	store := records.NewStore(consul)
	br := pgbackrest.New(cfg.PGBackRest, environ, log.Named("pgbackrest"))
	runner := task.New(cfg.Task, cfg.DB, br, store, log)
	dumper := dump.New(cfg.Dump, cfg.Task.DB, cfg.DB, cfg.PGBackRest, store, log)
	switch name {
	case "backup":
		return runner.Backup(ctx, *typ)
	case "init":
		return runner.Init(ctx)
	case "restore":
		return runner.Restore(ctx)
	case "stanza":
		return runner.Stanza(ctx)
	case "restored":
		if len(positional) != 1 {
			return exitcode.Errorf(exitcode.Usage, "task restored <recovered-to time>")
		}
		return runner.Restored(ctx, positional[0])
	case "dump":
		return dumper.Dump(ctx)
	case "dump-cat":
		if len(positional) != 1 {
			return exitcode.Errorf(exitcode.Usage, "dump-cat [--repo 1|2] <file | s3 key | name | latest>")
		}
		return dumper.Cat(ctx, positional[0], repo, stdout[0])
	case "drill":
		return drill.New(cfg.Drill, cfg.Task.DB, cfg.DB, br, dumper, environ, store, consul.Agent(), log).Run(ctx, repo)
	}
	return exitcode.Errorf(exitcode.Usage, "unknown task %q (see backup help)", name)
}

func runOperator(ctx context.Context, log hclog.Logger, name string, args []string, stdout io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := newFlags(name)
	asJSON := fs.Bool("json", false, "status as JSON")
	at := fs.String("time", "", "restore to this point in time (RFC 3339)")
	latest := fs.Bool("latest", false, "restore to the latest point (the default)")
	from := fs.String("from", "", "restore from repo1 or repo2")
	positional, err := parse(fs, args)
	if err != nil {
		return err
	}
	var cfg OperatorConfig
	if err := config.Load(&cfg, lookupEnv); err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	nomad, err := napi.NewClient(napi.DefaultConfig())
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	consul, err := capi.NewClient(capi.DefaultConfig())
	if err != nil {
		return exitcode.E(exitcode.Usage, err)
	}
	op := operator.New(cfg.Operator, nomad, consul, stdout, log.Named(name))
	switch name {
	case "status":
		return op.Status(ctx, positional, *asJSON)
	case "drill":
		return op.Run(ctx, "drill", positional)
	case "run":
		if len(positional) == 0 {
			return exitcode.Errorf(exitcode.Usage, "run full|incr|dump|drill [db…]")
		}
		return op.Run(ctx, positional[0], positional[1:])
	case "restore":
		if len(positional) != 1 {
			return exitcode.Errorf(exitcode.Usage, "restore <db> [--time RFC3339 | --latest] [--from repo1|repo2]")
		}
		req := operator.RestoreRequest{DB: positional[0]}
		if *at != "" && *latest {
			return exitcode.Errorf(exitcode.Usage, "--time and --latest exclude each other")
		}
		if *at != "" {
			if req.Time, err = time.Parse(time.RFC3339Nano, *at); err != nil {
				return exitcode.Errorf(exitcode.Usage, "--time %q: not an RFC 3339 time", *at)
			}
		}
		if req.Repo, err = task.ParseRepo(*from); err != nil {
			return exitcode.E(exitcode.Usage, fmt.Errorf("--from: %w", err))
		}
		return op.Restore(ctx, req)
	}
	return exitcode.Errorf(exitcode.Usage, "unknown command %q", name)
}

var usage = `backup: pgBackRest backups, SQL dumps, restore drills and restores of the shop's databases

Operator commands (NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN as for the CLIs):
  backup status [--json] [db…]      last full/incr/dump/drill/restore of every database, WAL archived
                                    up to and the RPO now; non-zero when a database has no backup,
                                    one overdue for its schedule (one period + BACKUP_STATUS_SLACK),
                                    or a failed last drill
  backup run full|incr|dump|drill [db…]
                                    force the periodic job <db>-db-backup-<kind> and follow it to its
                                    end (allocation status, task events, log lines)
  backup drill [db…]                backup run drill
  backup restore <db> [--time RFC3339 | --latest] [--from repo1|repo2]
                                    stop jobs <db> and <db>-db, dispatch <db>-db-restore, start
                                    <db>-db and <db> again, wait until Consul says they pass
  Databases: BACKUP_DATABASES (default auth,inventory,orders,payment).

Task commands (inside Nomad tasks, as the postgres user, with pgBackRest's PGBACKREST_* environment,
PG_BIN, PGHOST (socket folder), PGPORT, PGUSER, PGDATABASE, BACKUP_DB, CONSUL_HTTP_ADDR):
  backup task backup --type full|incr   backup to every repository, verify each, record
  backup task dump                      pg_dump SQL script in a snapshot whose row counts and checksums
                                        end it (a comment line), gzip, encrypted (openssl enc format),
                                        into every repository; older than BACKUP_DUMP_KEEP_DAYS deleted
  backup task drill [--repo 1|2]        restore into a scratch server (BACKUP_SCRATCH_PORT,
                                        BACKUP_SCRATCH_DIR), compare with live exactly, verify the
                                        repository; then restore the repository's latest dump with psql
                                        into a fresh cluster there and compare with the figures it
                                        carries; record and Consul TTL check backup-drill-<db>
  backup task check-archive             one line of JSON from pg_stat_archiver with the RPO
                                        (0 pass, 1 warning: RPO > BACKUP_MAX_RPO, 2 critical: failing)
  backup task metrics                   serve /metrics on BACKUP_METRICS_ADDR: each scheduled kind's last
                                        success and the age its schedule allows (BACKUP_FULL_CRON,
                                        BACKUP_INCR_CRON, BACKUP_DUMP_CRON, BACKUP_DRILL_CRON; one
                                        period + BACKUP_STATUS_SLACK), as status judges them
  backup task init                      empty data folder: restore the latest backup of the first
                                        repository that has one; exit 3 when none has: run initdb
  backup task restore                   restore over the data folder: BACKUP_RESTORE_TARGET_TIME
                                        (RFC 3339, empty: latest), BACKUP_RESTORE_REPO (1, 2, empty)
  backup task restored <time>           complete the last restore record with the point recovery reached
  backup task stanza                    wait for the server, stanza-create, check, and a first full
                                        backup into any repository that has none
  backup dump-cat [--repo 1|2] <file | s3 key | name | latest>
                                        decrypt and gunzip a dump to stdout: backup dump-cat latest | psql

Exit statuses:
  0   success
  1   failed: a backup, dump, drill or restore failed; status found a database overdue or a failed
      drill; check-archive: RPO above its limit (Consul warning)
  2   check-archive: archiving is failing (Consul critical)
  3   no backup: task init found none in any repository (the job runs initdb); status: a database
      has no backup at all; restore: nothing to restore
  4   unknown database
  5   unreachable: Nomad, Consul, PostgreSQL or a repository did not answer (task init: a
      repository could not be read and none had a backup: initdb is NOT safe)
  64  usage: bad arguments or environment
`
