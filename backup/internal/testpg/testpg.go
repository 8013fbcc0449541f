// Package testpg starts, for tests, PostgreSQL 15 servers set up as the
// database jobs run them: WAL archived by `pgbackrest archive-push`
// (async) into two encrypted posix repositories, a unix socket folder, no
// TCP. Everything runs as the postgres OS user (PostgreSQL refuses root,
// and pgBackRest's repositories must stay writable by the server's
// archive_command), in a short folder under /tmp that user owns (socket
// paths are limited to 107 bytes). services/platform/pgtest serves the
// services' tests with one shared TCP server and no archiving; this
// package is its counterpart for the backup command.
package testpg

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/database"
)

// Bin is Debian's PostgreSQL 15 server folder.
const Bin = "/usr/lib/postgresql/15/bin"

// Credential returns the postgres OS user, or nil when the test does not
// run as root (then it runs everything as itself).
func Credential(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("testpg: running as root needs the postgres system user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// FreePort returns a free TCP port on loopback.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Dir makes a folder owned by the postgres user, removed after the test.
func Dir(t testing.TB, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "bk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Cluster is one database with its pgBackRest configuration.
type Cluster struct {
	t    testing.TB
	Cred *syscall.Credential
	// Base holds data/, sock/, repo1/, repo2/, and pgBackRest's folders.
	Base   string
	Data   string
	Sock   string
	Port   int
	DB     string
	Env    map[string]string
	server *Server
	opts   Options
}

// Options change a cluster.
type Options struct {
	// DB is the database (and stanza) name: "shop" when empty.
	DB string
	// Repo2 replaces the posix repo2's variables (an S3 repository);
	// an empty map removes repo2.
	Repo2 map[string]string
	// NoArchive runs the server without archiving: a plain instance to
	// restore a dump into.
	NoArchive bool
	// Settings are extra server settings, "name=value", passed after the
	// harness's own so that they win over them (fsync=on for a benchmark).
	Settings []string
}

// NewCluster initializes a database with archiving on and starts it; the
// stanza is not created (that is `backup task stanza`'s job).
func NewCluster(t testing.TB, o Options) *Cluster {
	t.Helper()
	c := NewStopped(t, o)
	c.Initdb()
	c.Start()
	return c
}

// NewStopped prepares the folders and environment without a database.
func NewStopped(t testing.TB, o Options) *Cluster {
	t.Helper()
	cred := Credential(t)
	base := Dir(t, cred)
	if o.DB == "" {
		o.DB = "shop"
	}
	c := &Cluster{t: t, Cred: cred, Base: base, Data: filepath.Join(base, "data"), Sock: filepath.Join(base, "sock"), Port: FreePort(t), DB: o.DB, opts: o}
	for _, d := range []string{"sock", "repo1", "repo2", "spool", "log", "lock", "scratch"} {
		c.mkdir(filepath.Join(base, d))
	}
	empty := filepath.Join(base, "pgbackrest.conf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Env = map[string]string{
		"PGBACKREST_CONFIG":               empty,
		"PGBACKREST_STANZA":               o.DB,
		"PGBACKREST_PG1_PATH":             c.Data,
		"PGBACKREST_PG1_SOCKET_PATH":      c.Sock,
		"PGBACKREST_PG1_PORT":             strconv.Itoa(c.Port),
		"PGBACKREST_REPO1_PATH":           filepath.Join(base, "repo1"),
		"PGBACKREST_REPO1_CIPHER_TYPE":    "aes-256-cbc",
		"PGBACKREST_REPO1_CIPHER_PASS":    "repo1-pass-" + strconv.Itoa(c.Port),
		"PGBACKREST_REPO1_RETENTION_FULL": "2",
		"PGBACKREST_REPO2_PATH":           filepath.Join(base, "repo2"),
		"PGBACKREST_REPO2_CIPHER_TYPE":    "aes-256-cbc",
		"PGBACKREST_REPO2_CIPHER_PASS":    "repo2-pass-" + strconv.Itoa(c.Port),
		"PGBACKREST_REPO2_RETENTION_FULL": "2",
		"PGBACKREST_ARCHIVE_ASYNC":        "y",
		"PGBACKREST_SPOOL_PATH":           filepath.Join(base, "spool"),
		"PGBACKREST_LOG_PATH":             filepath.Join(base, "log"),
		"PGBACKREST_LOCK_PATH":            filepath.Join(base, "lock"),
		"PGBACKREST_LOG_LEVEL_CONSOLE":    "warn",
		"PGBACKREST_START_FAST":           "y",
		"PGBACKREST_COMPRESS_TYPE":        "zst",
		"PG_BIN":                          Bin,
		"PGHOST":                          c.Sock,
		"PGPORT":                          strconv.Itoa(c.Port),
		"PGUSER":                          "postgres",
		"PGDATABASE":                      o.DB,
		"BACKUP_DB":                       o.DB,
		"BACKUP_SCRATCH_PORT":             strconv.Itoa(FreePort(t)),
		"BACKUP_SCRATCH_DIR":              filepath.Join(base, "scratch"),
		"HOME":                            base,
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
	}
	if o.Repo2 != nil {
		for k := range c.Env {
			if strings.HasPrefix(k, "PGBACKREST_REPO2_") {
				delete(c.Env, k)
			}
		}
		for k, v := range o.Repo2 {
			c.Env[k] = v
		}
	}
	return c
}

func (c *Cluster) mkdir(p string) {
	c.t.Helper()
	if err := os.MkdirAll(p, 0o750); err != nil {
		c.t.Fatal(err)
	}
	if c.Cred != nil {
		if err := os.Chown(p, int(c.Cred.Uid), int(c.Cred.Gid)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Environ returns the environment as KEY=value lines, sorted.
func (c *Cluster) Environ() []string {
	out := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Command returns cmd set to run as the postgres user with the cluster's
// environment.
func (c *Cluster) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.Cred}
	cmd.Dir = c.Base
	return cmd
}

// Initdb creates the database folder (data checksums on, as the jobs do)
// and the database named c.DB.
func (c *Cluster) Initdb() {
	c.t.Helper()
	cmd := c.Command(filepath.Join(Bin, "initdb"), "-D", c.Data, "-U", "postgres", "--auth=trust",
		"--data-checksums", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("testpg: initdb: %v\n%s", err, out)
	}
	c.start("postgres", false) // no archiving before the stanza exists
	if _, err := c.Conn(c.t, "postgres").Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{c.DB}.Sanitize()); err != nil {
		c.t.Fatalf("testpg: create database: %v", err)
	}
	c.Stop()
}

// Server is a running postgres.
type Server struct {
	quit chan struct{}
	done chan error
	log  string
}

// Start starts the server on c.Data and waits until it accepts connections
// and has ended any recovery (a restored folder).
func (c *Cluster) Start() {
	c.t.Helper()
	c.start(c.DB, !c.opts.NoArchive)
}

func (c *Cluster) start(readyDB string, archiving bool) {
	c.t.Helper()
	if c.server != nil {
		c.t.Fatal("testpg: already started")
	}
	logPath := filepath.Join(c.Base, "postgres-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log")
	s := &Server{quit: make(chan struct{}), done: make(chan error, 1), log: logPath}
	started := make(chan error, 1)
	go func() {
		// Locked: Pdeathsig follows the thread that started the child, so
		// postgres dies with the test binary, even on a kill -9.
		runtime.LockOSThread()
		logf, err := os.Create(logPath)
		if err != nil {
			started <- err
			return
		}
		defer logf.Close()
		if c.Cred != nil {
			_ = logf.Chown(int(c.Cred.Uid), int(c.Cred.Gid))
		}
		archive := []string{"-c", "archive_mode=on", "-c", "archive_command=pgbackrest archive-push %p"}
		if !archiving {
			archive = []string{"-c", "archive_mode=off"}
		}
		cmd := c.Command(filepath.Join(Bin, "postgres"), append(append([]string{"-D", c.Data, "-p", strconv.Itoa(c.Port),
			"-c", "listen_addresses=",
			"-c", "unix_socket_directories=" + c.Sock,
			"-c", "wal_level=replica"}, archive...),
			"-c", "fsync=off",
			"-c", "max_connections=50",
			"-c", "shared_buffers=32MB",
			"-c", "log_min_messages=warning",
		)...)
		for _, set := range c.opts.Settings {
			cmd.Args = append(cmd.Args, "-c", set)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		started <- nil
		select {
		case <-s.quit:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-exited:
				s.done <- err
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				s.done <- fmt.Errorf("postgres did not stop in 30s")
			}
		case err := <-exited:
			s.done <- fmt.Errorf("postgres exited: %v", err)
		}
	}()
	if err := <-started; err != nil {
		c.t.Fatalf("testpg: start postgres: %v", err)
	}
	c.server = s
	c.t.Cleanup(func() {
		if c.server == s {
			c.Stop()
		}
	})
	err := database.WaitReady(context.Background(), c.ConnString(readyDB), 60*time.Second, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		var rec bool
		err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
		return !rec, err
	})
	if err != nil {
		log, _ := os.ReadFile(logPath)
		c.t.Fatalf("testpg: postgres not ready: %v\n%s", err, log)
	}
}

// Stop stops the server (fast shutdown).
func (c *Cluster) Stop() {
	c.t.Helper()
	if c.server == nil {
		return
	}
	close(c.server.quit)
	if err := <-c.server.done; err != nil {
		c.t.Logf("testpg: stop: %v", err)
	}
	c.server = nil
}

// Log returns the server's log so far.
func (c *Cluster) Log() string {
	if c.server == nil {
		return ""
	}
	b, _ := os.ReadFile(c.server.log)
	return string(b)
}

// PGBackRestLog returns the end of pgBackRest's log files.
func (c *Cluster) PGBackRestLog() string {
	files, _ := filepath.Glob(filepath.Join(c.Base, "log", "*.log"))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", f, data)
	}
	return b.String()
}

// ConnString returns the connection string of database db on the socket.
func (c *Cluster) ConnString(db string) string {
	return database.ConnString(c.Sock, c.Port, "postgres", db)
}

// Conn opens a connection to database db, closed after the test.
func (c *Cluster) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(db))
	if err != nil {
		t.Fatalf("testpg: connect: %v\n%s", err, c.Log())
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql on the cluster's database and fails the test on error.
func (c *Cluster) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(c.DB))
	if err != nil {
		t.Fatalf("testpg: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("testpg: %s: %v", sql, err)
	}
}

// Archived switches WAL and waits until the segment is archived.
func (c *Cluster) Archived(t testing.TB) {
	t.Helper()
	conn := c.Conn(t, c.DB)
	ctx := context.Background()
	var seg string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last string
		var waiting bool
		err := conn.QueryRow(ctx, `SELECT coalesce(last_archived_wal, ''),
			EXISTS (SELECT 1 FROM pg_ls_archive_statusdir() WHERE name = $1 || '.ready') FROM pg_stat_archiver`, seg).Scan(&last, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if !waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpg: segment %s not archived in 60s (last %q)\n%s\n%s", seg, last, c.Log(), c.PGBackRestLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
