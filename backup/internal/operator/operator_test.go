package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"
	napi "github.com/hashicorp/nomad/api"

	"github.com/mylittleshopping/shop/backup/internal/archive"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// syncBuffer collects the operator's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	consul *testagents.Consul
	nomad  *testagents.Nomad
}

func (e env) operator(t *testing.T, dbs ...string) (*Operator, *syncBuffer) {
	out := &syncBuffer{}
	cfg := Config{Databases: dbs, Slack: time.Minute, RunTimeout: 2 * time.Minute, StopTimeout: time.Minute,
		HealthyTimeout: time.Minute, Poll: 200 * time.Millisecond}
	return New(cfg, e.nomad.Client, e.consul.Client, out, logging.ForTest(t)), out
}

// batchJob is a raw_exec batch job running script once, failing at once
// when it fails (no restart, no reschedule).
func batchJob(id, script string) *napi.Job {
	job := napi.NewBatchJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg := napi.NewTaskGroup("backup", 1)
	tg.RestartPolicy = &napi.RestartPolicy{Attempts: new(0), Mode: new("fail")}
	tg.ReschedulePolicy = &napi.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
	task := napi.NewTask("backup", "raw_exec")
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", script}}
	task.Resources = &napi.Resources{CPU: new(50), MemoryMB: new(32)}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

func periodic(id, cron, script string) *napi.Job {
	job := batchJob(id, script)
	job.Periodic = &napi.PeriodicConfig{Enabled: new(true), Spec: new(cron), SpecType: new("cron"), ProhibitOverlap: new(true)}
	return job
}

// serviceJob runs a long-lived task registered in Consul as service id.
func serviceJob(id string) *napi.Job {
	job := napi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg := napi.NewTaskGroup("main", 1)
	task := napi.NewTask("main", "raw_exec")
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", "echo started; exec sleep 3600"}}
	task.Resources = &napi.Resources{CPU: new(50), MemoryMB: new(32)}
	task.KillTimeout = new(time.Second)
	task.Services = []*napi.Service{{Name: id, Provider: "consul", Address: "127.0.0.1"}}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

func register(t *testing.T, e env, job *napi.Job) {
	t.Helper()
	if _, _, err := e.nomad.Client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register %s: %v", *job.ID, err)
	}
}

func put(t *testing.T, e env, r *records.Record) {
	t.Helper()
	if err := records.NewStore(e.consul.Client).Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func ok(db, kind string, finished time.Time) *records.Record {
	r := &records.Record{DB: db, Kind: kind, Started: finished.Add(-3 * time.Second), Finished: finished, OK: true,
		SizeBytes: 3 << 20, Duration: records.Duration(3 * time.Second)}
	if kind == records.Full || kind == records.Incr {
		r.Repos = []records.RepoResult{{Repo: 1, OK: true, Backup: &pgbackrest.BackupSet{Label: "20261110-020000F", Type: kind}}}
	}
	return r
}

// TestOperator runs the operator's commands against one real Consul agent
// and one real Nomad dev agent; each subtest has databases of its own.
func TestOperator(t *testing.T) {
	consul := testagents.StartConsul(t)
	e := env{consul: consul, nomad: testagents.StartNomad(t, consul.Addr)}
	ctx := context.Background()

	t.Run("StatusBeforeAnyBackup", func(t *testing.T) {
		t.Parallel()
		op, out := e.operator(t, "alpha", "alpha2")
		err := op.Status(ctx, nil, false)
		if exitcode.Of(err) != exitcode.NoBackup || !strings.Contains(err.Error(), "alpha: no backup") || !strings.Contains(err.Error(), "alpha2: no backup") {
			t.Fatalf("got %v (exit %d), want exit %d saying no backup", err, exitcode.Of(err), exitcode.NoBackup)
		}
		if !strings.Contains(out.String(), "PROBLEM  no backup") {
			t.Fatalf("output:\n%s", out)
		}
	})

	t.Run("StatusAfterBackups", func(t *testing.T) {
		t.Parallel()
		now := time.Now().UTC()
		for _, k := range []string{records.Full, records.Incr, records.Dump, records.Drill} {
			put(t, e, ok("beta", k, now.Add(-10*time.Minute)))
		}
		// The database's wal-archive script check, as Nomad registers it.
		agent := e.consul.Client.Agent()
		if err := agent.ServiceRegister(&capi.AgentServiceRegistration{ID: "beta-db-archive-1", Name: ArchiveService("beta"), Port: 5432,
			Checks: capi.AgentServiceChecks{{CheckID: "beta-wal", Name: "wal-archive", TTL: "1h"}}}); err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(archive.Status{LastArchivedWAL: "00000001000000000000002A", LastArchivedAt: &now, RPOSeconds: 7})
		if err := agent.UpdateTTL("beta-wal", string(line)+"\n", capi.HealthPassing); err != nil {
			t.Fatal(err)
		}
		op, out := e.operator(t, "beta")
		if err := op.Status(ctx, nil, false); err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		for _, want := range []string{"archived up to 00000001000000000000002A", "RPO 7s", "repo1:20261110-020000F", "problems none"} {
			if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
				t.Errorf("status output lacks %q:\n%s", want, out)
			}
		}
		var js bytes.Buffer
		op.out = &js
		if err := op.Status(ctx, nil, true); err != nil {
			t.Fatal(err)
		}
		var all []DBStatus
		if err := json.Unmarshal(js.Bytes(), &all); err != nil || len(all) != 1 || all[0].WAL.Archive.RPOSeconds != 7 || all[0].Records["full"] == nil {
			t.Fatalf("status --json: %v\n%s", err, js.String())
		}

		// An hourly full schedule with a 3 h old full backup: overdue; and a failed drill.
		register(t, e, periodic(JobName("beta", "full"), "0 * * * *", "true"))
		put(t, e, ok("beta", records.Full, now.Add(-3*time.Hour)))
		put(t, e, &records.Record{DB: "beta", Kind: records.Drill, Started: now, Finished: now, Error: "public.orders: 10 rows live, 9 restored"})
		out.b.Reset()
		op.out = out
		err := op.Status(ctx, nil, false)
		if exitcode.Of(err) != exitcode.Failed || !strings.Contains(err.Error(), "full backup overdue") || !strings.Contains(err.Error(), "last drill failed: public.orders") {
			t.Fatalf("got %v, want overdue and failed drill\n%s", err, out)
		}
		if !strings.Contains(out.String(), "[0 * * * *]") || !strings.Contains(out.String(), "last success") {
			t.Fatalf("output:\n%s", out)
		}
	})

	t.Run("RunFollowsPeriodicJob", func(t *testing.T) {
		t.Parallel()
		register(t, e, periodic(JobName("gamma", "full"), "0 3 * * *", "echo step one; sleep 1; echo step two done"))
		register(t, e, periodic(JobName("gamma", "incr"), "0 3 * * *", "echo about to fail >&2; exit 3"))
		op, out := e.operator(t, "gamma")
		if err := op.Run(ctx, "full", nil); err != nil {
			t.Fatalf("run full: %v\n%s", err, out)
		}
		for _, want := range []string{"gamma-db-backup-full: forced", "allocation running", "backup stdout| step one", "backup stdout| step two done", "allocation complete", "gamma-db-backup-full: done in"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run output lacks %q:\n%s", want, out)
			}
		}
		err := op.Run(ctx, "incr", nil)
		if exitcode.Of(err) != exitcode.Failed || !strings.Contains(err.Error(), "Exit Code: 3") || !strings.Contains(out.String(), "backup stderr| about to fail") {
			t.Fatalf("run of a failing job: got %v (exit %d)\n%s", err, exitcode.Of(err), out)
		}
		t.Logf("output:\n%s", out)
		if err := op.Run(ctx, "dump", nil); exitcode.Of(err) != exitcode.Failed || !strings.Contains(err.Error(), "not registered") {
			t.Fatalf("run of a job that does not exist: %v", err)
		}
	})

	t.Run("Restore", func(t *testing.T) {
		t.Parallel()
		register(t, e, serviceJob("delta-db"))
		register(t, e, serviceJob("delta"))
		restore := batchJob("delta-db-restore", `echo "restoring to [$NOMAD_META_target_time] from [$NOMAD_META_repo]"`)
		restore.ParameterizedJob = &napi.ParameterizedJobConfig{MetaOptional: []string{"target_time", "repo"}}
		register(t, e, restore)
		register(t, e, periodic("delta-db-backup-full", "0 2 * * 0", `echo "full backup after the restore"`))
		op, out := e.operator(t, "delta")
		target := time.Date(2026, 11, 10, 12, 30, 0, 0, time.UTC)
		if err := op.Restore(ctx, RestoreRequest{DB: "delta", Time: target, Repo: 2}); exitcode.Of(err) != exitcode.NoBackup {
			t.Fatalf("restore without a backup: %v, want exit %d", err, exitcode.NoBackup)
		}
		put(t, e, ok("delta", records.Full, time.Now()))
		if err := op.Restore(ctx, RestoreRequest{DB: "delta", Time: target, Repo: 2}); err != nil {
			t.Fatalf("restore: %v\n%s", err, out)
		}
		steps := []string{"stop job delta: done", "stop job delta-db: done", "restoring to [2026-11-10T12:30:00Z] from [2]",
			"start job delta-db and wait until it passes in Consul: done", "start job delta and wait until it passes in Consul: done",
			"full backup after the restore", "full backup of the restored timeline: done", "restored to 2026-11-10T12:30:00Z"}
		last := -1
		for _, s := range steps {
			i := strings.Index(out.String(), s)
			if i < 0 || i < last {
				t.Fatalf("restore output lacks %q after the previous step:\n%s", s, out)
			}
			last = i
		}
		t.Logf("output:\n%s", out)
		for _, svc := range []string{"delta", "delta-db"} {
			if entries, _, err := e.consul.Client.Health().Service(svc, "", true, nil); err != nil || len(entries) == 0 {
				t.Fatalf("%s not passing after the restore: %v", svc, err)
			}
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		op, _ := e.operator(t, "auth", "orders")
		for name, err := range map[string]error{
			"status":  op.Status(ctx, []string{"nope"}, false),
			"run":     op.Run(ctx, "full", []string{"orders", "nope"}),
			"restore": op.Restore(ctx, RestoreRequest{DB: "nope"}),
		} {
			if exitcode.Of(err) != exitcode.UnknownDB || !strings.Contains(err.Error(), `unknown database "nope"`) {
				t.Errorf("%s: got %v, want exit %d", name, err, exitcode.UnknownDB)
			}
		}
		if err := op.Run(ctx, "weekly", nil); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("run weekly: %v", err)
		}
		deadNomad, _ := napi.NewClient(&napi.Config{Address: "http://127.0.0.1:1"})
		deadConsul, _ := capi.NewClient(&capi.Config{Address: "127.0.0.1:1"})
		for name, o := range map[string]*Operator{
			"nomad":  New(op.cfg, deadNomad, e.consul.Client, &bytes.Buffer{}, logging.ForTest(t)),
			"consul": New(op.cfg, e.nomad.Client, deadConsul, &bytes.Buffer{}, logging.ForTest(t)),
		} {
			err := o.Status(ctx, nil, false)
			if exitcode.Of(err) != exitcode.Unreachable || !strings.Contains(err.Error(), name+" unreachable") {
				t.Errorf("%s down: got %v (exit %d), want exit %d", name, err, exitcode.Of(err), exitcode.Unreachable)
			}
		}
	})
}
