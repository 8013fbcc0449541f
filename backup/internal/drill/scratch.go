package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/database"
)

// scratch is a throwaway server the drill restores into: the physical
// restore, then the dump's fresh cluster, one after the other on the
// scratch port.
type scratch struct {
	cmd    *exec.Cmd
	port   int
	sock   string
	log    string
	exited chan error
	// shortSock is the folder made for the socket when sock was too long.
	shortSock string
}

// maxSocketPath is the longest path of a unix socket (sun_path, with its
// terminating NUL) that PostgreSQL can bind.
const maxSocketPath = 107

// startScratch starts postgres on data with its socket in sock only (no
// TCP) and its log next to data; settings ("name=value") come after the
// common ones. env is the server's environment.
func startScratch(bin string, port int, data, sock string, env []string, settings ...string) (*scratch, error) {
	logPath := filepath.Join(filepath.Dir(data), "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// A data folder deep in a Nomad allocation's volume gives a socket
	// path longer than a unix socket's: the server would refuse to start.
	// The socket then goes to a fresh private folder under /tmp.
	shortSock := ""
	if len(filepath.Join(sock, ".s.PGSQL."+strconv.Itoa(port))) > maxSocketPath {
		if shortSock, err = os.MkdirTemp("/tmp", "drill-sock-"); err != nil {
			return nil, fmt.Errorf("socket folder: %w", err)
		}
		sock = shortSock
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "archive_mode=off", // never push WAL into the live stanza
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + sock,
		"-c", "shared_buffers=32MB",
	}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if shortSock != "" {
			_ = os.RemoveAll(shortSock)
		}
		return nil, fmt.Errorf("start scratch server: %w", err)
	}
	s := &scratch{cmd: cmd, port: port, sock: sock, log: logPath, exited: make(chan error, 1), shortSock: shortSock}
	go func() { s.exited <- cmd.Wait() }()
	return s, nil
}

func (s *scratch) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitOpen waits until the scratch server accepts connections to db and
// has ended any recovery (a restored server promoted).
func (s *scratch) waitOpen(ctx context.Context, user, db string, timeout time.Duration) (*pgx.Conn, error) {
	ctx2, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cs := database.ConnString(s.sock, s.port, user, db)
	var last error
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			return nil, fmt.Errorf("scratch server exited (%v): %s", err, s.tail())
		default:
		}
		conn, err := pgx.Connect(ctx2, cs)
		if err == nil {
			var rec bool
			if err = conn.QueryRow(ctx2, "SELECT pg_is_in_recovery()").Scan(&rec); err == nil && !rec {
				return conn, nil
			}
			conn.Close(context.Background())
			if err == nil {
				err = errors.New("still in recovery")
			}
		}
		last = err
		select {
		case <-ctx2.Done():
			return nil, fmt.Errorf("scratch server not open after %s: %v: %s", timeout, last, s.tail())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stop shuts the scratch server down fast (SIGINT), killing it if it lingers.
func (s *scratch) stop(log hclog.Logger) {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		log.Warn("scratch server did not stop in 30s: killing it")
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	if s.shortSock != "" {
		_ = os.RemoveAll(s.shortSock)
	}
}
