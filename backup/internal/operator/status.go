package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/mylittleshopping/shop/backup/internal/archive"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// DBStatus is what status reports for one database.
type DBStatus struct {
	DB      string                     `json:"db"`
	Records map[string]*records.Record `json:"records"`
	// Schedules are the periodic jobs' cron specs by kind ("" when the
	// job is not registered).
	Schedules map[string]string `json:"schedules"`
	WAL       *WALStatus        `json:"wal,omitempty"`
	Problems  []string          `json:"problems"`
	NoBackup  bool              `json:"no_backup"`
}

// WALStatus is the database's wal-archive check, as Consul has it.
type WALStatus struct {
	CheckStatus string         `json:"check_status"`
	Archive     archive.Status `json:"archive"`
	Output      string         `json:"output,omitempty"`
}

// Status reports every database's backups and returns an error when one
// has no backup (NoBackup), or one is overdue or its last drill failed
// (Failed).
func (o *Operator) Status(ctx context.Context, dbs []string, asJSON bool) error {
	dbs, err := o.Databases(dbs)
	if err != nil {
		return err
	}
	now := time.Now()
	var all []*DBStatus
	for _, db := range dbs {
		st, err := o.status(ctx, db, now)
		if err != nil {
			return err
		}
		all = append(all, st)
	}
	if asJSON {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
	} else {
		for _, st := range all {
			o.printText(st, now)
		}
	}
	var problems []string
	noBackup := false
	for _, st := range all {
		for _, p := range st.Problems {
			problems = append(problems, st.DB+": "+p)
		}
		noBackup = noBackup || st.NoBackup
	}
	switch {
	case noBackup:
		return exitcode.Errorf(exitcode.NoBackup, "%s", strings.Join(problems, "; "))
	case len(problems) > 0:
		return exitcode.Errorf(exitcode.Failed, "%s", strings.Join(problems, "; "))
	}
	return nil
}

func (o *Operator) status(ctx context.Context, db string, now time.Time) (*DBStatus, error) {
	st := &DBStatus{DB: db, Records: map[string]*records.Record{}, Schedules: map[string]string{}, Problems: []string{}}
	for _, kind := range records.Kinds {
		r, err := o.store.Get(ctx, db, kind)
		if err != nil {
			return nil, unreachable("consul", err)
		}
		if r != nil {
			st.Records[kind] = r
		}
	}
	for _, kind := range []string{records.Full, records.Incr, records.Dump, records.Drill} {
		job, _, err := o.nomad.Jobs().Info(JobName(db, kind), (nil))
		if err != nil {
			if notFound(err) {
				continue
			}
			return nil, unreachable("nomad", err)
		}
		if job.Periodic != nil && job.Periodic.Spec != nil {
			st.Schedules[kind] = *job.Periodic.Spec
			if job.Periodic.TimeZone != nil && *job.Periodic.TimeZone != "" && *job.Periodic.TimeZone != "UTC" {
				st.Schedules[kind] += " (" + *job.Periodic.TimeZone + ")"
			}
		}
	}
	wal, err := o.walStatus(ctx, db)
	if err != nil {
		return nil, err
	}
	st.WAL = wal
	o.judge(st, now)
	return st, nil
}

// JobName is the periodic job of a kind of backup of db.
func JobName(db, kind string) string { return db + "-db-backup-" + kind }

// ArchiveService is the Consul service whose wal-archive check reports
// db's WAL archive (nomad/postgres.nomad.hcl): a service of its own, so
// that a late archive never takes the database out of discovery.
func ArchiveService(db string) string { return db + "-db-archive" }

func (o *Operator) walStatus(ctx context.Context, db string) (*WALStatus, error) {
	q := (&capi.QueryOptions{}).WithContext(ctx)
	checks, _, err := o.consul.Health().Checks(ArchiveService(db), q)
	if err != nil {
		return nil, unreachable("consul", err)
	}
	for _, c := range checks {
		if c.Name != "wal-archive" {
			continue
		}
		w := &WALStatus{CheckStatus: c.Status, Output: strings.TrimSpace(c.Output)}
		for _, line := range strings.Split(c.Output, "\n") {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "{") {
				if json.Unmarshal([]byte(line), &w.Archive) == nil {
					w.Output = ""
				}
				break
			}
		}
		return w, nil
	}
	return nil, nil
}

// judge fills the problems: no backup at all, a kind overdue for its
// schedule, a failed last drill, a critical archive check.
func (o *Operator) judge(st *DBStatus, now time.Time) {
	counted := records.Counted(st.Records)
	if counted[records.Incr] == nil {
		st.NoBackup = true
		st.Problems = append(st.Problems, "no backup (no full or incremental backup has succeeded yet)")
	}
	overdue := func(what string, r *records.Record, kind string) {
		spec, ok := st.Schedules[kind]
		if !ok || r == nil {
			return
		}
		max, ok := records.Allowed(spec, now, o.cfg.Slack)
		if !ok {
			return
		}
		if age := now.Sub(r.Finished); age > max {
			st.Problems = append(st.Problems, fmt.Sprintf("%s overdue: last at %s (%s ago), schedule %q allows %s",
				what, r.Finished.Format(time.RFC3339), age.Round(time.Minute), spec, max))
		}
	}
	overdue("full backup", counted[records.Full], records.Full)
	overdue("backup", counted[records.Incr], records.Incr)
	if d := st.Records[records.Dump]; counted[records.Dump] == nil {
		if _, scheduled := st.Schedules[records.Dump]; scheduled || d != nil {
			st.Problems = append(st.Problems, "no dump has succeeded yet")
		}
	} else {
		overdue("dump", counted[records.Dump], records.Dump)
	}
	if d := st.Records[records.Drill]; d != nil {
		if !d.OK {
			st.Problems = append(st.Problems, "last drill failed: "+d.Error)
		} else {
			overdue("drill", d, records.Drill)
		}
	}
	if st.WAL != nil && st.WAL.CheckStatus == capi.HealthCritical {
		st.Problems = append(st.Problems, "WAL archiving critical")
	}
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (o *Operator) printText(st *DBStatus, now time.Time) {
	o.printf("%s\n", st.DB)
	line := func(kind string) {
		r := st.Records[kind]
		sched := st.Schedules[kind]
		if sched != "" {
			sched = "  [" + sched + "]"
		}
		if r == nil {
			o.printf("  %-8s none%s\n", kind, sched)
			return
		}
		state := "ok"
		if !r.OK {
			state = "FAILED: " + r.Error
		}
		extra := ""
		for _, rr := range r.Repos {
			if rr.Backup != nil {
				extra += fmt.Sprintf(" repo%d:%s", rr.Repo, rr.Backup.Label)
			}
		}
		if r.Drill != nil && r.OK {
			extra = fmt.Sprintf(" %d tables equal, schema %s, backup %s", len(r.Drill.Tables), r.Drill.SchemaLive, r.Drill.Label)
			if r.Drill.Dump != nil {
				extra += "; " + r.Drill.Dump.Summary()
			}
		}
		if r.Restore != nil {
			extra = fmt.Sprintf(" from %s, backup %s, to %s", r.Restore.From, r.Restore.Label, r.Restore.Target)
		}
		o.printf("  %-8s %s (%s ago)  %s  took %s  %s%s%s\n", kind, r.Finished.Format(time.RFC3339),
			now.Sub(r.Finished).Round(time.Second), size(r.SizeBytes), r.Duration, state, extra, sched)
		if !r.OK && r.LastOK != nil {
			o.printf("  %-8s last success %s (%s ago)\n", "", r.LastOK.Finished.Format(time.RFC3339), now.Sub(r.LastOK.Finished).Round(time.Second))
		}
	}
	for _, k := range []string{records.Full, records.Incr, records.Dump} {
		line(k)
	}
	switch {
	case st.WAL == nil:
		o.printf("  %-8s unknown (no wal-archive check on service %s)\n", "wal", ArchiveService(st.DB))
	case st.WAL.Output != "":
		o.printf("  %-8s %s: %s\n", "wal", st.WAL.CheckStatus, st.WAL.Output)
	default:
		a := st.WAL.Archive
		at := "never"
		if a.LastArchivedAt != nil {
			at = a.LastArchivedAt.Format(time.RFC3339)
		}
		o.printf("  %-8s archived up to %s at %s, RPO %ds, %d failures (%s)\n", "wal", a.LastArchivedWAL, at, a.RPOSeconds, a.FailedCount, st.WAL.CheckStatus)
	}
	line(records.Drill)
	line(records.Restore)
	if len(st.Problems) == 0 {
		o.printf("  %-8s none\n", "problems")
	}
	for _, p := range st.Problems {
		o.printf("  %-8s %s\n", "PROBLEM", p)
	}
}
