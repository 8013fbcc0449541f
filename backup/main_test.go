package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

// The task tests run the backup command as the Nomad jobs do: as its own
// process, as the postgres OS user, with the jobs' environment. The
// process is this test binary itself (copied where that user can run it),
// which runs main when BACKUP_TEST_MAIN is set, so it carries -race and
// the code under test.
const mainEnv = "BACKUP_TEST_MAIN"

var binary string

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		return
	}
	dir, err := os.MkdirTemp("/tmp", "backup-bin-")
	if err != nil {
		panic(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "backup")
	if err := copyFile(os.Args[0], binary); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// result is one run of the command.
type result struct {
	stdout, stderr string
	code           int
}

// backup runs the command with the cluster's environment, CONSUL_HTTP_ADDR
// and extra variables ("KEY=" removes one).
func backup(t *testing.T, c *testpg.Cluster, consul *testagents.Consul, extra map[string]string, args ...string) result {
	t.Helper()
	cmd := c.Command(binary, args...)
	env := map[string]string{}
	for k, v := range c.Env {
		env[k] = v
	}
	env[mainEnv] = "1"
	env["LOG_LEVEL"] = "debug"
	if consul != nil {
		env["CONSUL_HTTP_ADDR"] = consul.Addr
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	cmd.Env = nil
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run backup %v: %v", args, err)
	}
	t.Logf("backup %s: exit %d in %s\nstderr:\n%s", strings.Join(args, " "), r.code, took, r.stderr)
	return r
}

// mustBackup runs the command and fails the test unless it exits 0.
func mustBackup(t *testing.T, c *testpg.Cluster, consul *testagents.Consul, extra map[string]string, args ...string) result {
	t.Helper()
	r := backup(t, c, consul, extra, args...)
	if r.code != 0 {
		t.Fatalf("backup %s: exit %d, want 0\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func record(t *testing.T, consul *testagents.Consul, db, kind string) *records.Record {
	t.Helper()
	r, err := records.NewStore(consul.Client).Get(context.Background(), db, kind)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatalf("no %s record for %s", kind, db)
	}
	return r
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
