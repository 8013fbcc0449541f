package servicetest

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a service run as its own process from its built binary, for
// the tests that kill it (SIGKILL, as a crash would) or that run a whole
// shop.
type Process struct {
	Name string
	Addr string            // its HTTP_ADDR, 127.0.0.1:port
	URL  string            // http://127.0.0.1:port
	Env  map[string]string // its whole environment but PATH, HOME and TMPDIR
	Logs *Logs             // what it wrote on stdout and stderr

	cfg Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// NewProcess prepares the binary cfg.Binary as a service on a free port;
// Start runs it, as often as the test wants. When the test ends it is
// stopped, cfg.AfterStop runs, and if the test failed the last lines of
// its log are printed.
func NewProcess(t testing.TB, cfg Config) *Process {
	t.Helper()
	if cfg.Binary == "" {
		t.Fatalf("servicetest: %s: Config.Binary is empty", cfg.Name)
	}
	if cfg.Tail == 0 {
		cfg.Tail = 60
	}
	p := &Process{Name: cfg.Name, Env: prepareEnv(t, cfg.Env), Logs: cfg.Logs, cfg: cfg}
	p.Addr = p.Env["HTTP_ADDR"]
	p.URL = "http://" + p.Addr
	if p.Logs == nil {
		p.Logs = &Logs{}
	}
	t.Cleanup(func() {
		p.Stop()
		finish(t, p.Name, p.Logs, cfg.Tail, cfg.AfterStop)
	})
	return p
}

// Start runs the process and waits until it is ready.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(p.cfg.Binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range p.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	// Its own process group; killed with the test binary if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	// No connection kept: the test may kill the process next.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	switch err := waitReady(client, p.URL, orDefault(p.cfg.Ready, 60*time.Second), done); {
	case errors.Is(err, errEnded):
		t.Fatalf("%s exited while starting:\n%s", p.Name, p.Logs.Tail(40))
	case err != nil:
		t.Fatalf("%s %v:\n%s", p.Name, err, p.Logs.Tail(40))
	}
}

// Stop asks the process to drain (SIGTERM) and kills it after 10s.
func (p *Process) Stop() {
	p.signal(syscall.SIGTERM)
	if !p.wait(10 * time.Second) {
		p.Kill()
	}
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits at most d for the process to exit and says whether it did.
func (p *Process) wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
