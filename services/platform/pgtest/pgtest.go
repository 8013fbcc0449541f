// Package pgtest gives tests a real PostgreSQL: one throw-away server per
// test binary (initdb into a temporary folder, a free loopback port, fsync
// off) and a fresh, migrated database per test, cloned from a template so
// that a test costs milliseconds. No Docker: the Debian PostgreSQL binaries.
//
// A package that uses it stops the server when its tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Main runs the tests of a package and then stops the server they shared.
func Main(m *testing.M) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// New returns a pool on a fresh database with the sets' migrations applied.
// The database is dropped when the test ends.
func New(t testing.TB, sets ...pgdb.MigrationSet) *pgxpool.Pool {
	t.Helper()
	url := URL(t, sets...)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// URL creates a fresh migrated database, as New, and returns its connection
// URL, for tests that start a whole service.
func URL(t testing.TB, sets ...pgdb.MigrationSet) string {
	t.Helper()
	srv, err := shared.get()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	tmpl, err := srv.template(sets)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), srv.seq.Add(1))
	ctx := context.Background()
	if _, err := srv.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl+" STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// shared is the server of this test binary, started on first use.
var shared = &lazyServer{}

type lazyServer struct {
	once sync.Once
	srv  *server
	err  error
}

func (l *lazyServer) get() (*server, error) {
	l.once.Do(func() { l.srv, l.err = start() })
	return l.srv, l.err
}

func (l *lazyServer) stop() {
	if l.srv != nil {
		l.srv.stop()
	}
}

type server struct {
	dir   string
	port  int
	admin *pgxpool.Pool
	seq   atomic.Int64
	quit  chan struct{}
	done  chan error

	mu        sync.Mutex
	templates map[string]string
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// binDir finds the PostgreSQL server binaries: PGTEST_BIN_DIR, then PATH,
// then Debian's versioned folder.
func binDir() (string, error) {
	if d := os.Getenv("PGTEST_BIN_DIR"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (install Debian's postgresql, or set PGTEST_BIN_DIR); run `make tools`")
}

// credential returns who runs PostgreSQL: it refuses to run as root, so
// under root it is the postgres system user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	s := &server{dir: dir, quit: make(chan struct{}), done: make(chan error, 1), templates: map[string]string{}}
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.run(bin, data, cred); err == nil {
			// One line per test binary, so a test run shows it used a real
			// server (go test prints it with -v or on failure).
			fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL from %s on 127.0.0.1:%d, data in %s\n", bin, s.port, dir)
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// run starts postgres and waits until it accepts connections. The process
// is started from a goroutine locked to its OS thread that lives as long as
// the server, so that Pdeathsig kills postgres if the test binary dies
// without running Main's cleanup (a timeout, a kill -9).
func (s *server) run(bin, data string, cred *syscall.Credential) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		logf, err := os.Create(logPath)
		if err != nil {
			started <- err
			return
		}
		defer logf.Close()
		if cred != nil {
			_ = logf.Chown(int(cred.Uid), int(cred.Gid))
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
			"-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=500",
			"-c", "shared_buffers=64MB",
			"-c", "log_min_messages=warning",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start postgres: %w", err)
			return
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		started <- nil
		select {
		case <-s.quit:
			_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case err := <-exited:
				s.done <- err
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				s.done <- errors.New("postgres did not stop in 10s; killed")
			}
		case err := <-exited:
			s.done <- fmt.Errorf("postgres exited: %v", err)
		}
	}()
	if err := <-started; err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		pool, err := pgxpool.New(ctx, s.url("postgres"))
		if err == nil {
			err = pool.Ping(ctx)
		}
		cancel()
		if err == nil {
			s.admin = pool
			return nil
		}
		if pool != nil {
			pool.Close()
		}
		select {
		case derr := <-s.done:
			log, _ := os.ReadFile(logPath)
			s.quit = make(chan struct{})
			return fmt.Errorf("%v\n%s", derr, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres not ready after 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	close(s.quit)
	if err := <-s.done; err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	os.RemoveAll(s.dir)
}

// template returns a database migrated with sets, created once per binary
// and per distinct content of the sets, for CREATE DATABASE … TEMPLATE.
func (s *server) template(sets []pgdb.MigrationSet) (string, error) {
	h := sha256.New()
	for _, set := range sets {
		migs, err := set.Load()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "set %s\n", set.Name)
		for _, m := range migs {
			fmt.Fprintf(h, "%s %s\n", m.Name, m.Checksum)
		}
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.templates[key]; ok {
		return name, nil
	}
	name := "tmpl_" + key
	ctx := context.Background()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, s.url(name))
	if err != nil {
		return "", err
	}
	err = pgdb.Migrate(ctx, pool, hclog.NewNullLogger(), sets...)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	// Mark it a template so nobody connects to it by mistake while clones
	// are made.
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", err
	}
	s.templates[key] = name
	return name, nil
}

// Exec runs sql on the test database behind pool and fails the test on
// error, for short set-up statements.
func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", strings.TrimSpace(sql), err)
	}
}

// databaseWords are what PostgreSQL's refusals say, whatever the schema.
var databaseWords = []string{"SQLSTATE", "violates", "duplicate key", "constraint", "ERROR:"}

// SafeProblem fails t unless a client reading err as httpx writes it gets
// status and exactly the detail want, carrying none of PostgreSQL's words:
// no SQLSTATE, no "violates", "duplicate key" or "constraint", none of
// names (the constraints and tables the statement touched). It is how a
// store test shows that what the database says of a refused write stays in
// the log.
func SafeProblem(t testing.TB, err error, status int, want string, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a %d %q", status, want)
	}
	rec := httptest.NewRecorder()
	httpx.Error(rec, httptest.NewRequest(http.MethodPost, "/", nil), err)
	var p httpx.Problem
	if jerr := json.Unmarshal(rec.Body.Bytes(), &p); jerr != nil {
		t.Fatalf("problem body %q: %v", rec.Body.String(), jerr)
	}
	if p.Status != status || p.Detail != want {
		t.Errorf("got %d %q, want %d %q (error %v)", p.Status, p.Detail, status, want, err)
	}
	var found []string
	for _, w := range append(names, databaseWords...) {
		if strings.Contains(strings.ToLower(p.Detail), strings.ToLower(w)) {
			found = append(found, w)
		}
	}
	if len(found) > 0 {
		t.Errorf("detail says %q, want none of the database's words", found)
	}
}
