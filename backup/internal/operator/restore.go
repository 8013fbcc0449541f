package operator

import (
	"context"
	"fmt"
	"strings"
	"time"

	capi "github.com/hashicorp/consul/api"
	napi "github.com/hashicorp/nomad/api"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// RestoreRequest is what `backup restore` asks for.
type RestoreRequest struct {
	DB string
	// Time is the point in time; zero: the latest.
	Time time.Time
	// Repo is 1 or 2; 0: the first repository with a suitable backup.
	Repo int
}

// Restore stops the service and its database, restores the database with
// the restore job, starts the database and then the service again, each
// step waited for and printed with its time. When the restore job fails
// the database stays stopped: its data folder may be half restored.
func (o *Operator) Restore(ctx context.Context, req RestoreRequest) error {
	if _, err := o.Databases([]string{req.DB}); err != nil {
		return err
	}
	db := req.DB
	total := time.Now()
	step := func(what string, fn func() error) error {
		start := time.Now()
		o.printf("%s: %s …\n", db, what)
		if err := fn(); err != nil {
			o.printf("%s: %s FAILED after %s: %v\n", db, what, since(start), err)
			return err
		}
		o.printf("%s: %s: done in %s\n", db, what, since(start))
		return nil
	}
	err := step("check that a backup exists", func() error {
		for _, k := range []string{records.Full, records.Incr} {
			r, err := o.store.Get(ctx, db, k)
			if err != nil {
				return unreachable("consul", err)
			}
			if records.LastOK(r) != nil {
				return nil
			}
		}
		return exitcode.Errorf(exitcode.NoBackup, "no backup of %s yet: nothing to restore", db)
	})
	if err != nil {
		return err
	}
	if _, _, err := o.nomad.Jobs().Info(db+"-db-restore", (&napi.QueryOptions{}).WithContext(ctx)); err != nil {
		if notFound(err) {
			return exitcode.Errorf(exitcode.Failed, "job %s-db-restore is not registered in Nomad", db)
		}
		return unreachable("nomad", err)
	}
	for _, job := range []string{db, db + "-db"} {
		if err := step("stop job "+job, func() error { return o.stopJob(ctx, job) }); err != nil {
			return err
		}
	}
	meta := map[string]string{"target_time": "", "repo": ""}
	target := "latest"
	if !req.Time.IsZero() {
		meta["target_time"] = req.Time.UTC().Format(time.RFC3339Nano)
		target = meta["target_time"]
	}
	if req.Repo != 0 {
		meta["repo"] = fmt.Sprint(req.Repo)
	}
	err = step(fmt.Sprintf("restore to %s (repo %q)", target, meta["repo"]), func() error {
		resp, _, err := o.nomad.Jobs().Dispatch(db+"-db-restore", meta, nil, "", (&napi.WriteOptions{}).WithContext(ctx))
		if err != nil {
			return unreachable("nomad", fmt.Errorf("dispatch %s-db-restore: %w", db, err))
		}
		fctx, cancel := context.WithTimeout(ctx, o.cfg.RunTimeout)
		defer cancel()
		return o.follow(fctx, resp.DispatchedJobID, resp.EvalID)
	})
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("%w; jobs %s-db and %s stay stopped: restore again, or start them when the data is known good", err, db, db))
	}
	for _, job := range []string{db + "-db", db} {
		if err := step("start job "+job+" and wait until it passes in Consul", func() error { return o.startJob(ctx, job) }); err != nil {
			return exitcode.E(exitcode.Failed, err)
		}
	}
	// The restored database is on a new timeline: a backup taken before the
	// restore point may lie on the old one, past the branch, and a later
	// "latest" restore could not follow it. A full backup now starts the new
	// timeline's chain.
	err = step("full backup of the restored timeline", func() error { return o.runOne(ctx, JobName(db, records.Full)) })
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("%w; %s is serving, but take a full backup (backup run full %s) before relying on a restore", err, db, db))
	}
	o.printf("%s: restored to %s and serving again, %s in all\n", db, target, since(total))
	return nil
}

// stopJob stops a job (keeping it registered, to start it again) and waits
// until none of its allocations runs.
func (o *Operator) stopJob(ctx context.Context, job string) error {
	j, _, err := o.nomad.Jobs().Info(job, (&napi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if notFound(err) {
			o.printf("  job %s is not registered: nothing to stop\n", job)
			return nil
		}
		return unreachable("nomad", err)
	}
	if j.Stop == nil || !*j.Stop {
		if _, _, err := o.nomad.Jobs().Deregister(job, false, (&napi.WriteOptions{}).WithContext(ctx)); err != nil {
			return unreachable("nomad", fmt.Errorf("stop %s: %w", job, err))
		}
	}
	deadline := time.Now().Add(o.cfg.StopTimeout)
	for {
		stubs, _, err := o.nomad.Jobs().Allocations(job, false, (&napi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return unreachable("nomad", err)
		}
		live := 0
		for _, s := range stubs {
			if s.ClientStatus == napi.AllocClientStatusPending || s.ClientStatus == napi.AllocClientStatusRunning {
				live++
			}
		}
		if live == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d allocations of %s still running after %s", live, job, o.cfg.StopTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.cfg.Poll):
		}
	}
}

// startJob registers the stopped job's last version again with Stop unset
// (what `nomad job start` does) and waits until its Consul service has a
// passing instance of one of the new allocations (Nomad names its Consul
// services _nomad-task-<alloc id>-…), never a stale one of the old.
func (o *Operator) startJob(ctx context.Context, job string) error {
	j, _, err := o.nomad.Jobs().Info(job, (&napi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if notFound(err) {
			return fmt.Errorf("job %s is not registered", job)
		}
		return unreachable("nomad", err)
	}
	var since uint64
	if j.Stop != nil && *j.Stop {
		stop := false
		j.Stop = &stop
		resp, _, err := o.nomad.Jobs().Register(j, (&napi.WriteOptions{}).WithContext(ctx))
		if err != nil {
			return unreachable("nomad", fmt.Errorf("start %s: %w", job, err))
		}
		since = resp.JobModifyIndex
	}
	deadline := time.Now().Add(o.cfg.HealthyTimeout)
	for {
		stubs, _, err := o.nomad.Jobs().Allocations(job, false, (&napi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return unreachable("nomad", err)
		}
		var fresh []string
		for _, s := range stubs {
			if s.CreateIndex >= since && s.ClientStatus == napi.AllocClientStatusRunning {
				fresh = append(fresh, s.ID)
			}
		}
		q := (&capi.QueryOptions{}).WithContext(ctx)
		entries, _, err := o.consul.Health().Service(job, "", true, q)
		if err != nil {
			return unreachable("consul", err)
		}
		for _, e := range entries {
			for _, id := range fresh {
				if strings.Contains(e.Service.ID, id) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s has no passing instance of a new allocation after %s (%d running)", job, o.cfg.HealthyTimeout, len(fresh))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.cfg.Poll):
		}
	}
}
