// Package operator is the operator's side of the backup command, run from
// a machine that reaches Nomad and Consul but has no pgBackRest: status
// (from the records in Consul KV, the wal-archive checks and the periodic
// jobs' schedules), run (force a periodic job and follow its allocation to
// the end) and restore (stop the service and its database, dispatch the
// restore job, start them again and wait until Consul says they pass).
//
// The jobs it drives, per database <db>: the periodic batch jobs
// <db>-db-backup-{full,incr,dump,drill}, the parameterized batch job
// <db>-db-restore (meta target_time, repo), the database service job
// <db>-db (Consul service <db>-db with the wal-archive script check) and
// the service job <db> (Consul service <db>).
package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	capi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	napi "github.com/hashicorp/nomad/api"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// Config is the operator side's configuration.
type Config struct {
	Databases []string `env:"BACKUP_DATABASES" default:"auth,inventory,orders,payment"`
	// Slack is added to a schedule's period before a backup counts as overdue.
	Slack time.Duration `env:"BACKUP_STATUS_SLACK" default:"1h"`
	// RunTimeout bounds `backup run` per job, placement to end.
	RunTimeout time.Duration `env:"BACKUP_RUN_TIMEOUT" default:"2h"`
	// StopTimeout bounds the wait for a stopped job's allocations to end,
	// and HealthyTimeout the wait for a started one to pass in Consul.
	StopTimeout    time.Duration `env:"BACKUP_STOP_TIMEOUT" default:"5m"`
	HealthyTimeout time.Duration `env:"BACKUP_HEALTHY_TIMEOUT" default:"10m"`
	// Poll is how often Nomad and Consul are polled while following.
	Poll time.Duration `env:"BACKUP_POLL" default:"1s"`
}

// Operator talks to Nomad and Consul for the operator's commands.
type Operator struct {
	cfg    Config
	nomad  *napi.Client
	consul *capi.Client
	store  *records.Store
	out    io.Writer
	log    hclog.Logger
}

// New returns an operator printing its progress and reports to out.
func New(cfg Config, nomad *napi.Client, consul *capi.Client, out io.Writer, log hclog.Logger) *Operator {
	return &Operator{cfg: cfg, nomad: nomad, consul: consul, store: records.NewStore(consul), out: out, log: log}
}

// Databases checks the names asked for (all when none) against the shop's.
func (o *Operator) Databases(names []string) ([]string, error) {
	if len(names) == 0 {
		return o.cfg.Databases, nil
	}
	for _, n := range names {
		if !slices.Contains(o.cfg.Databases, n) {
			return nil, exitcode.Errorf(exitcode.UnknownDB, "unknown database %q (the shop's: %s)", n, strings.Join(o.cfg.Databases, ", "))
		}
	}
	return names, nil
}

func (o *Operator) printf(format string, args ...any) { fmt.Fprintf(o.out, format, args...) }

// notFound reports whether a Nomad error says the job does not exist: a
// 404, or the 500 "job not found" that PeriodicForce answers.
func notFound(err error) bool {
	var ure napi.UnexpectedResponseError
	if errors.As(err, &ure) && ure.StatusCode() == 404 {
		return true
	}
	return strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "job not found")
}

// unreachable classifies transport errors (connection refused, DNS, TLS,
// timeouts) as Unreachable, naming the agent.
func unreachable(agent string, err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return exitcode.E(exitcode.Unreachable, fmt.Errorf("%s unreachable: %w", agent, err))
	}
	var ure napi.UnexpectedResponseError
	if errors.As(err, &ure) && ure.HasError() && !ure.HasStatusCode() {
		return exitcode.E(exitcode.Unreachable, fmt.Errorf("%s unreachable: %w", agent, err))
	}
	return err
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
