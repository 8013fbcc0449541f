package operator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	napi "github.com/hashicorp/nomad/api"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
)

// Run forces the periodic job of kind (full, incr, dump, drill) of each
// database and follows it to its end, one database after the other.
func (o *Operator) Run(ctx context.Context, kind string, dbs []string) error {
	switch kind {
	case "full", "incr", "dump", "drill":
	default:
		return exitcode.Errorf(exitcode.Usage, "run %q: full, incr, dump or drill", kind)
	}
	dbs, err := o.Databases(dbs)
	if err != nil {
		return err
	}
	var failed []error
	for _, db := range dbs {
		if err := o.runOne(ctx, JobName(db, kind)); err != nil {
			if exitcode.Of(err) == exitcode.Unreachable {
				return err
			}
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return exitcode.E(exitcode.Failed, errors.Join(failed...))
	}
	return nil
}

func (o *Operator) runOne(ctx context.Context, job string) error {
	start := time.Now()
	evalID, _, err := o.nomad.Jobs().PeriodicForce(job, (&napi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		if notFound(err) {
			return exitcode.Errorf(exitcode.Failed, "job %s is not registered in Nomad", job)
		}
		return unreachable("nomad", fmt.Errorf("force %s: %w", job, err))
	}
	o.printf("%s: forced (evaluation %s)\n", job, short(evalID))
	ctx, cancel := context.WithTimeout(ctx, o.cfg.RunTimeout)
	defer cancel()
	if err := o.follow(ctx, job, evalID); err != nil {
		o.printf("%s: FAILED after %s: %v\n", job, since(start), err)
		return fmt.Errorf("%s: %w", job, err)
	}
	o.printf("%s: done in %s\n", job, since(start))
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// follow waits for the allocation the evaluation places, prints its status
// changes, task events and log lines, and returns nil when it completed.
func (o *Operator) follow(ctx context.Context, label, evalID string) error {
	alloc, err := o.placed(ctx, label, evalID)
	if err != nil {
		return err
	}
	o.printf("%s: allocation %s on node %s\n", label, short(alloc.ID), short(alloc.NodeID))
	logCtx, stopLogs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	streams := map[string]bool{}
	lastStatus := ""
	seen := map[string]int{}
	defer func() {
		stopLogs()
		wg.Wait()
	}()
	for {
		a, _, err := o.nomad.Allocations().Info(alloc.ID, (&napi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return unreachable("nomad", err)
		}
		if a.ClientStatus != lastStatus {
			o.printf("%s: allocation %s\n", label, a.ClientStatus)
			lastStatus = a.ClientStatus
		}
		tasks := make([]string, 0, len(a.TaskStates))
		for t := range a.TaskStates {
			tasks = append(tasks, t)
		}
		sort.Strings(tasks)
		for _, t := range tasks {
			ts := a.TaskStates[t]
			for _, ev := range ts.Events[seen[t]:] {
				msg := ev.DisplayMessage
				if msg == "" {
					msg = ev.Message
				}
				o.printf("%s: task %s: %s %s\n", label, t, ev.Type, msg)
			}
			seen[t] = len(ts.Events)
			if !streams[t] && (ts.State == "running" || ts.State == "dead") {
				streams[t] = true
				for _, typ := range []string{"stdout", "stderr"} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						o.streamLogs(logCtx, a, t, typ, label)
					}()
				}
			}
		}
		if a.ClientTerminalStatus() {
			// Let the log streams catch up with the task's last lines.
			time.Sleep(2 * time.Second)
			return outcome(a)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still %s after the run timeout: %w", a.ClientStatus, ctx.Err())
		case <-time.After(o.cfg.Poll):
		}
	}
}

func outcome(a *napi.Allocation) error {
	if a.ClientStatus == napi.AllocClientStatusComplete {
		failed := false
		for _, ts := range a.TaskStates {
			failed = failed || ts.Failed
		}
		if !failed {
			return nil
		}
	}
	var why []string
	for t, ts := range a.TaskStates {
		// The exit code (Terminated) says more than the restart policy's
		// verdict that follows it.
		var msgs []string
		for _, ev := range ts.Events {
			if ev.Type == napi.TaskTerminated || ev.Type == napi.TaskDriverFailure || ev.FailsTask {
				msg := ev.DisplayMessage
				if msg == "" {
					msg = ev.Message
				}
				msgs = append(msgs, msg)
			}
		}
		if len(msgs) > 0 {
			why = append(why, fmt.Sprintf("task %s: %s", t, strings.Join(msgs, "; ")))
		}
	}
	if len(why) == 0 {
		why = append(why, a.ClientDescription)
	}
	return fmt.Errorf("allocation %s %s: %s", short(a.ID), a.ClientStatus, strings.Join(why, "; "))
}

// placed waits until the evaluation's job has an allocation, printing the
// evaluation's state; a placement failure is an error.
func (o *Operator) placed(ctx context.Context, label, evalID string) (*napi.Allocation, error) {
	lastStatus := ""
	for {
		ev, _, err := o.nomad.Evaluations().Info(evalID, (&napi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, unreachable("nomad", err)
		}
		if ev.Status != lastStatus {
			o.printf("%s: evaluation %s\n", label, ev.Status)
			lastStatus = ev.Status
		}
		// A blocked evaluation is retried as a new one by Nomad: look for
		// allocations of the (child) job, not of this evaluation only.
		stubs, _, err := o.nomad.Jobs().Allocations(ev.JobID, true, (&napi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, unreachable("nomad", err)
		}
		if len(stubs) > 0 {
			sort.Slice(stubs, func(i, j int) bool { return stubs[i].CreateIndex < stubs[j].CreateIndex })
			a, _, err := o.nomad.Allocations().Info(stubs[0].ID, (&napi.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return nil, unreachable("nomad", err)
			}
			return a, nil
		}
		if ev.Status == "failed" || ev.Status == "canceled" {
			return nil, fmt.Errorf("evaluation %s %s: %s", short(evalID), ev.Status, ev.StatusDescription)
		}
		if ev.Status == "complete" && len(ev.FailedTGAllocs) > 0 {
			var why []string
			for tg, m := range ev.FailedTGAllocs {
				why = append(why, fmt.Sprintf("group %s: %d nodes evaluated, %d filtered, %d exhausted %v %v",
					tg, m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted, m.ConstraintFiltered, m.DimensionExhausted))
			}
			o.printf("%s: waiting for capacity: %s\n", label, strings.Join(why, "; "))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no allocation placed (evaluation %s): %w", ev.Status, ctx.Err())
		case <-time.After(o.cfg.Poll):
		}
	}
}

// streamLogs prints a task's log lines as they come, until ctx ends.
func (o *Operator) streamLogs(ctx context.Context, a *napi.Allocation, task, typ, label string) {
	frames, errs := o.nomad.AllocFS().Logs(a, true, task, typ, "start", 0, ctx.Done(), (&napi.QueryOptions{}).WithContext(ctx))
	var pending []byte
	flush := func(all bool) {
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			o.printf("%s: %s %s| %s\n", label, task, typ, pending[:i])
			pending = pending[i+1:]
		}
		if all && len(pending) > 0 {
			o.printf("%s: %s %s| %s\n", label, task, typ, pending)
			pending = nil
		}
	}
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				flush(true)
				return
			}
			if f != nil && len(f.Data) > 0 {
				pending = append(pending, f.Data...)
				flush(false)
			}
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				o.log.Debug("log stream ended", "task", task, "type", typ, "error", err)
			}
			flush(true)
			return
		case <-ctx.Done():
			flush(true)
			return
		}
	}
}
