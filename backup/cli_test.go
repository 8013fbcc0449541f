package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
)

// TestCommandLine runs the command's own process for its usage errors:
// exit statuses, one clear line, never a stack trace.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"help"}, nil, 0, "Exit statuses:"},
		{nil, nil, exitcode.Usage, "no command"},
		{[]string{"frobnicate"}, nil, exitcode.Usage, `unknown command "frobnicate"`},
		{[]string{"status", "nope"}, []string{"NOMAD_ADDR=http://127.0.0.1:1", "CONSUL_HTTP_ADDR=127.0.0.1:1"}, exitcode.UnknownDB, `unknown database "nope"`},
		{[]string{"status"}, []string{"NOMAD_ADDR=http://127.0.0.1:1", "CONSUL_HTTP_ADDR=127.0.0.1:1"}, exitcode.Unreachable, "consul unreachable"},
		{[]string{"restore", "orders", "--time", "noon"}, nil, exitcode.Usage, "not an RFC 3339 time"},
		{[]string{"restore", "orders", "--from", "repo3"}, nil, exitcode.Usage, "is not a repository"},
		{[]string{"run", "weekly"}, []string{"NOMAD_ADDR=http://127.0.0.1:1"}, exitcode.Usage, `run "weekly"`},
		{[]string{"task", "backup", "--type", "full"}, nil, exitcode.Usage, "PGBACKREST_STANZA is required"},
		{[]string{"task", "check-archive"}, []string{"PGHOST=/nonexistent", "PGDATABASE=x"}, exitcode.Unreachable, "connect to x"},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, tt.args...)
		cmd.Env = append([]string{mainEnv + "=1", "PATH=/usr/bin:/bin"}, tt.env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), "goroutine ") {
			t.Errorf("backup %s: exit %d, want %d with %q; output:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out.String())
		}
	}
}
