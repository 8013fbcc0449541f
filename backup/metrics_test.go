package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
)

// TestMetricsJudgeLikeStatus: `backup task metrics` serves, for each
// scheduled kind, the age of the record status judges it by and the age its
// schedule allows, read from Consul at each scrape: a weekly full backup
// nine days old is late (BackupLate: age > allowed), an incremental
// schedule is met by the newest success even when its latest attempt
// failed, and a kind that never succeeded has no age (no made-up zero).
func TestMetricsJudgeLikeStatus(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	store := records.NewStore(consul.Client)
	ctx := context.Background()
	now := time.Now().UTC()
	put := func(kind string, ok bool, finished time.Time) {
		t.Helper()
		r := &records.Record{DB: "auth", Kind: kind, Started: finished.Add(-time.Minute), Finished: finished, OK: ok}
		if !ok {
			r.Error = "repo2: unreachable"
		}
		if err := store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	put(records.Full, true, now.Add(-9*24*time.Hour))
	put(records.Incr, true, now.Add(-2*time.Hour))
	put(records.Incr, false, now.Add(-30*time.Minute))
	put(records.Drill, true, now.Add(-time.Hour))

	addr := fmt.Sprintf("127.0.0.1:%d", porttest.Free(t))
	cmd := exec.Command(binary, "task", "metrics")
	cmd.Env = []string{mainEnv + "=1", "PATH=" + os.Getenv("PATH"), "CONSUL_HTTP_ADDR=" + consul.Addr,
		"BACKUP_DB=auth", "BACKUP_METRICS_ADDR=" + addr, "BACKUP_STATUS_SLACK=1h",
		"BACKUP_FULL_CRON=0 2 * * 0", "BACKUP_INCR_CRON=0 2 * * 1-6", "BACKUP_DUMP_CRON=30 3 * * *", "BACKUP_DRILL_CRON=0 4 * * *"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		t.Logf("backup task metrics:\n%s", stderr.String())
	})
	url := "http://" + addr + "/metrics"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("/metrics did not answer: %v", err)
		}
	}
	f := metricstest.Scrape(t, url)
	value := func(name, kind string) (float64, bool) {
		return f.Value(name, "db", "auth", "kind", kind)
	}
	const hour, day = 3600.0, 24 * 3600.0
	near := func(got, want float64) bool { return got > want-60 && got < want+60 }

	age, ok := value("backup_last_success_age_seconds", records.Full)
	allowed, _ := value("backup_allowed_age_seconds", records.Full)
	if !ok || !near(age, 9*day) || allowed != 7*day+hour || age <= allowed {
		t.Errorf("full: age %v (present %v), allowed %v; want 9 days, over the 7 days + 1 h a weekly schedule allows", age, ok, allowed)
	}
	age, ok = value("backup_last_success_age_seconds", records.Incr)
	allowed, _ = value("backup_allowed_age_seconds", records.Incr)
	if !ok || !near(age, 2*hour) || (allowed != day+hour && allowed != 2*day+hour) {
		t.Errorf("incr: age %v (present %v), allowed %v; want the last success's 2 h, within a weekday schedule's 1 or 2 days + 1 h", age, ok, allowed)
	}
	if got, ok := value("backup_last_attempt_success", records.Incr); !ok || got != 0 {
		t.Errorf("incr: backup_last_attempt_success %v (present %v), want 0: its latest attempt failed", got, ok)
	}
	if got, ok := value("backup_last_success_timestamp_seconds", records.Drill); !ok || !near(got, float64(now.Add(-time.Hour).Unix())) {
		t.Errorf("drill: last success at %v (present %v), want an hour ago", got, ok)
	}
	if got, ok := value("backup_last_success_age_seconds", records.Dump); ok {
		t.Errorf("dump: age %v, want none: no dump has succeeded", got)
	}
	if got, ok := value("backup_allowed_age_seconds", records.Dump); !ok || got != day+hour {
		t.Errorf("dump: allowed %v (present %v), want a daily schedule's 1 day + 1 h", got, ok)
	}

	// At the next scrape, a new success is seen (nothing is cached), and
	// a full backup newer than the last incremental one meets the
	// incremental schedule too.
	put(records.Full, true, now)
	f = metricstest.Scrape(t, url)
	for _, kind := range []string{records.Full, records.Incr} {
		if age, ok := f.Value("backup_last_success_age_seconds", "db", "auth", "kind", kind); !ok || age > 60 {
			t.Errorf("%s after a new full backup: age %v (present %v), want under a minute", kind, age, ok)
		}
	}
}
