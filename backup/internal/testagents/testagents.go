// Package testagents starts real Consul and Nomad agents for tests: Consul
// through consul/sdk/testutil (as services/platform does), Nomad as a dev
// agent (`nomad agent -dev`, raw_exec enabled) on free loopback ports,
// registered in that Consul. The binaries come from PATH (make tools puts
// $(scripts/tools.sh bindir) there).
package testagents

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	napi "github.com/hashicorp/nomad/api"
)

// Consul is a running Consul agent.
type Consul struct {
	Addr   string
	Client *capi.Client
}

// StartConsul starts a Consul dev agent, stopped after the test.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	srv, err := testutil.NewTestServerConfigT(t, func(c *testutil.TestServerConfig) {
		c.LogLevel = "warn"
		c.Connect = nil
		c.Peering = nil
	})
	if err != nil {
		t.Fatalf("start consul agent (is consul on PATH? make tools): %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	srv.WaitForLeader(t)
	client, err := capi.NewClient(&capi.Config{Address: srv.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	return &Consul{Addr: srv.HTTPAddr, Client: client}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Nomad is a running Nomad dev agent (server and client).
type Nomad struct {
	Addr   string
	Client *napi.Client
}

// StartNomad starts a Nomad dev agent with raw_exec, registered in the
// Consul at consulAddr, and waits until its client node is ready.
func StartNomad(t testing.TB, consulAddr string) *Nomad {
	t.Helper()
	bin, err := exec.LookPath("nomad")
	if err != nil {
		t.Fatalf("nomad not on PATH (make tools): %v", err)
	}
	dir := t.TempDir()
	p := freePorts(t, 3)
	hcl := fmt.Sprintf(`
data_dir  = %q
bind_addr = "127.0.0.1"
log_level = "WARN"
ports {
  http = %d
  rpc  = %d
  serf = %d
}
client {
  enabled = true
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
consul {
  address = %q
}
`, filepath.Join(dir, "data"), p[0], p[1], p[2], consulAddr)
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "nomad.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-dev", "-network-interface=lo", "-config="+cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A Nomad client fails to start with AWS_CA_BUNDLE set (ARCHITECTURE.md).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") && !strings.HasPrefix(kv, "NOMAD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nomad: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})
	addr := fmt.Sprintf("http://127.0.0.1:%d", p[0])
	client, err := napi.NewClient(&napi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		nodes, _, err := client.Nodes().List(nil)
		if err == nil && len(nodes) > 0 && nodes[0].Status == "ready" {
			if _, ok := nodes[0].Drivers["raw_exec"]; ok && nodes[0].Drivers["raw_exec"].Healthy {
				return &Nomad{Addr: addr, Client: client}
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "nomad.log"))
			t.Fatalf("nomad exited: %v\n%s", err, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "nomad.log"))
			t.Fatalf("nomad node not ready with raw_exec in 90s (last error %v)\n%s", err, log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
