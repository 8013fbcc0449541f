// Package dump takes the logical backup: a plain SQL script of the whole
// database (pg_dump --format=plain --no-owner --no-privileges), gzipped and
// encrypted in openssl's enc format with each repository's cipher pass,
// kept BACKUP_DUMP_KEEP_DAYS days in every repository:
//
//	<repo1-path>/dump/<db>/<db>-20060102T150405Z.sql.gz.enc
//	s3://<bucket>/<repo2-path>/dump/<db>/<db>-20060102T150405Z.sql.gz.enc
//
// No plaintext ever touches a disk: pg_dump's output is compressed and
// encrypted on its way to the file. An operator restores one with
//
//	backup dump-cat <file|key|latest> | psql -d <empty database>
//
// or with stock tools only:
//
//	openssl enc -d -aes-256-cbc -pbkdf2 -iter 10000 -md sha256 -in F -pass env:PASS | gunzip | psql
//
// # The figures a dump carries
//
// A dump can only be proven whole against what it should hold, and the
// live database has moved on by the time anyone restores it. So the dump
// measures its own snapshot: a session on the live database opens a
// REPEATABLE READ transaction, exports its snapshot, takes the figures of
// package pgsums (row count and checksum of every user table, schema
// version) in it, and pg_dump runs with --snapshot=<that snapshot> while
// the transaction stays open. The figures then describe exactly the rows
// the script holds, under any concurrent writes, and travel as the
// script's last line, an SQL comment (see SumsPrefix) that psql skips.
// `task drill` restores the latest dump with psql into an empty server
// and compares (package drill). Dumps taken by earlier versions of the
// command carry no such line; they still restore.
package dump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/backup/internal/database"
	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/backup/internal/opensslenc"
	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
	"github.com/mylittleshopping/shop/backup/internal/pgsums"
	"github.com/mylittleshopping/shop/backup/internal/records"
)

// Config is the dumps' retention.
type Config struct {
	KeepDays int `env:"BACKUP_DUMP_KEEP_DAYS" default:"7"`
}

// Validate refuses a retention that would delete the dump just taken.
func (c *Config) Validate() error {
	if c.KeepDays < 1 {
		return fmt.Errorf("BACKUP_DUMP_KEEP_DAYS=%d: at least 1", c.KeepDays)
	}
	return nil
}

// Dumper takes and reads the dumps of one database.
type Dumper struct {
	cfg   Config
	name  string // the database (BACKUP_DB)
	db    database.Config
	br    pgbackrest.Config
	store *records.Store
	log   hclog.Logger
	now   func() time.Time
}

// New returns a dumper of database name.
func New(cfg Config, name string, db database.Config, br pgbackrest.Config, store *records.Store, log hclog.Logger) *Dumper {
	return &Dumper{cfg: cfg, name: name, db: db, br: br, store: store, log: log, now: time.Now}
}

// FileName returns the name of the dump of db taken at t.
func FileName(db string, t time.Time) string {
	return db + "-" + t.UTC().Format("20060102T150405Z") + ".sql.gz.enc"
}

var fileName = regexp.MustCompile(`^(.+)-(\d{8}T\d{6}Z)\.sql\.gz\.enc$`)

// takenAt returns when a dump of db named name was taken.
func takenAt(db, name string) (time.Time, bool) {
	m := fileName.FindStringSubmatch(name)
	if m == nil || m[1] != db {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", m[2])
	return t, err == nil
}

// Dump writes a new dump into every repository, deletes those older than
// the retention and records the result.
func (d *Dumper) Dump(ctx context.Context) error {
	rec := &records.Record{DB: d.name, Kind: records.Dump, Started: d.now().UTC()}
	err := d.dump(ctx, rec)
	rec.Finish(err)
	if perr := d.store.Put(ctx, rec); perr != nil {
		return exitcode.E(exitcode.Unreachable, errors.Join(err, perr))
	}
	if err != nil {
		return exitcode.E(exitcode.Failed, fmt.Errorf("dump of %s: %w", d.name, err))
	}
	return nil
}

func (d *Dumper) dump(ctx context.Context, rec *records.Record) error {
	repos := d.br.Repos()
	for _, r := range repos {
		if r.CipherPass == "" {
			return fmt.Errorf("%s has no cipher pass (PGBACKREST_REPO%d_CIPHER_PASS): a dump is never stored in plaintext", r.Name(), r.Index)
		}
	}
	name := FileName(d.name, rec.Started)
	first, err := openStore(repos[0], d.name)
	if err != nil {
		return err
	}
	size, sums, err := d.writeFirst(ctx, first, name, repos[0].CipherPass)
	res := records.RepoResult{Repo: repos[0].Index, Object: first.Where(name), SizeBytes: size, OK: err == nil}
	if err != nil {
		res.Error = err.Error()
		rec.Repos = append(rec.Repos, res)
		return fmt.Errorf("%s: %w", repos[0].Name(), err)
	}
	rec.SizeBytes = size
	rec.Dumped = &records.Dumped{Schema: sums.Schema, Tables: len(sums.Tables), Rows: sums.Rows()}
	var errs []error
	res.Deleted, err = d.prune(ctx, first, name)
	if err != nil {
		res.OK, res.Error = false, err.Error()
		errs = append(errs, fmt.Errorf("%s: prune: %w", repos[0].Name(), err))
	}
	rec.Repos = append(rec.Repos, res)
	d.log.Info("dump written", "repo", repos[0].Name(), "object", res.Object, "bytes", size, "deleted", len(res.Deleted),
		"tables", len(sums.Tables), "rows", sums.Rows(), "schema", sums.Schema)

	for _, r := range repos[1:] {
		res := records.RepoResult{Repo: r.Index}
		err := d.copyTo(ctx, first, name, repos[0].CipherPass, r, &res)
		res.OK = err == nil
		if err != nil {
			res.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", r.Name(), err))
		} else {
			d.log.Info("dump copied", "repo", r.Name(), "object", res.Object, "bytes", res.SizeBytes, "deleted", len(res.Deleted))
		}
		rec.Repos = append(rec.Repos, res)
	}
	return errors.Join(errs...)
}

// writeFirst runs pg_dump into gzip into the cipher into the store, in
// the snapshot whose figures it appends (the package doc says why).
func (d *Dumper) writeFirst(ctx context.Context, st store, name, pass string) (int64, *pgsums.Set, error) {
	conn, err := d.db.Connect(ctx)
	if err != nil {
		return 0, nil, exitcode.E(exitcode.Unreachable, err)
	}
	defer conn.Close(context.Background())
	snap, sums, err := snapshot(ctx, conn)
	if err != nil {
		return 0, nil, err
	}
	// Deferred after Close, so it runs first: once pg_dump has exited.
	defer conn.Exec(context.Background(), "ROLLBACK")
	trailer, err := sumsLine(sums)
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(d.db.Bin, "pg_dump"),
		"--format=plain", "--no-owner", "--no-privileges", "--no-password", "--snapshot="+snap,
		"--host="+d.db.Host, "--port="+strconv.Itoa(d.db.Port), "--username="+d.db.User, "--dbname="+d.db.Name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("pg_dump: %w", err)
	}
	pr, pw := io.Pipe()
	counted := &counter{r: pr}
	go func() {
		// A pg_dump that fails midway gets the trailer too; its exit
		// status below deletes that dump.
		pw.CloseWithError(compressEncrypt(pw, io.MultiReader(out, strings.NewReader(trailer)), pass))
	}()
	perr := st.Put(ctx, name, counted, -1)
	// Drain so pg_dump never blocks on a full pipe when Put stopped early.
	_, _ = io.Copy(io.Discard, pr)
	werr := cmd.Wait()
	if werr != nil {
		if perr == nil {
			_ = st.Delete(ctx, name) // a partial dump must not look whole
		}
		return 0, nil, fmt.Errorf("pg_dump: %v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return counted.n, sums, perr
}

// compressEncrypt writes the gzip of r, encrypted with pass, to w.
func compressEncrypt(w io.Writer, r io.Reader, pass string) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc, err := opensslenc.NewWriter(bw, pass)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(enc)
	if _, err := io.Copy(gz, r); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// copyTo stores the dump in another repository, re-encrypted with that
// repository's pass when it differs, then prunes there.
func (d *Dumper) copyTo(ctx context.Context, from store, name, fromPass string, repo pgbackrest.Repo, res *records.RepoResult) error {
	to, err := openStore(repo, d.name)
	if err != nil {
		return err
	}
	res.Object = to.Where(name)
	src, err := from.Open(ctx, name)
	if err != nil {
		return err
	}
	defer src.Close()
	var body io.Reader = src
	size := int64(-1)
	if repo.CipherPass == fromPass {
		if f, ok := src.(*os.File); ok {
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
		}
	} else {
		plain, err := opensslenc.NewReader(src, fromPass)
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		go func() {
			enc, err := opensslenc.NewWriter(pw, repo.CipherPass)
			if err == nil {
				_, err = io.Copy(enc, plain)
			}
			if err == nil {
				err = enc.Close()
			}
			pw.CloseWithError(err)
		}()
		defer pr.Close()
		body = pr
	}
	c := &counter{r: body}
	if err := to.Put(ctx, name, c, size); err != nil {
		return err
	}
	res.SizeBytes = c.n
	res.Deleted, err = d.prune(ctx, to, name)
	return err
}

// prune deletes this database's dumps older than the retention, never keep.
func (d *Dumper) prune(ctx context.Context, st store, keep string) ([]string, error) {
	names, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := d.now().Add(-time.Duration(d.cfg.KeepDays) * 24 * time.Hour)
	var deleted []string
	for _, n := range names {
		t, ok := takenAt(d.name, n)
		if !ok || n == keep || !t.Before(cutoff) {
			continue
		}
		if err := st.Delete(ctx, n); err != nil {
			return deleted, fmt.Errorf("delete %s: %w", st.Where(n), err)
		}
		deleted = append(deleted, st.Where(n))
	}
	return deleted, nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Cat writes the SQL script of a dump to w: ref is a file, an S3 key (or
// s3://bucket/key), a dump's name, or "latest"; repo picks the repository
// (its store and cipher pass), 0 guesses: the repository whose folder holds
// the file, else repo2 when it is S3 and ref is not a local file, else repo1.
func (d *Dumper) Cat(ctx context.Context, ref string, repo int, w io.Writer) error {
	r, rc, where, err := d.open(ctx, ref, repo)
	if err != nil {
		return err
	}
	defer rc.Close()
	plain, err := opensslenc.NewReader(bufio.NewReaderSize(rc, 256<<10), r.CipherPass)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	gz, err := gzip.NewReader(plain)
	if err != nil {
		return fmt.Errorf("%s: %w (wrong cipher pass?)", where, err)
	}
	if _, err := io.Copy(w, gz); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return gz.Close()
}

func (d *Dumper) open(ctx context.Context, ref string, repoN int) (pgbackrest.Repo, io.ReadCloser, string, error) {
	repos := d.br.Repos()
	pick := func(n int) (pgbackrest.Repo, error) {
		r, err := d.br.Repo(n)
		if err != nil {
			return r, exitcode.E(exitcode.Usage, err)
		}
		return r, nil
	}
	if fi, err := os.Stat(ref); err == nil && !fi.IsDir() {
		n := repoN
		if n == 0 {
			n = 1
			abs, _ := filepath.Abs(ref)
			for _, r := range repos {
				if r.Type == "posix" && strings.HasPrefix(abs, filepath.Clean(r.Path)+"/") {
					n = r.Index
				}
			}
		}
		r, err := pick(n)
		if err != nil {
			return r, nil, "", err
		}
		f, err := os.Open(ref)
		return r, f, ref, err
	}
	n := repoN
	if n == 0 {
		n = 1
		if len(repos) > 1 && repos[1].Type == "s3" && (strings.HasPrefix(ref, "s3://") || strings.Contains(ref, "/")) {
			n = 2
		}
	}
	r, err := pick(n)
	if err != nil {
		return r, nil, "", err
	}
	st, err := openStore(r, d.name)
	if err != nil {
		return r, nil, "", err
	}
	name := ref
	if ref == "latest" {
		if name, err = d.latest(ctx, st); err != nil {
			return r, nil, "", exitcode.E(exitcode.Unreachable, err)
		}
		if name == "" {
			return r, nil, "", exitcode.Errorf(exitcode.NoBackup, "no dump of %s in %s", d.name, r.Name())
		}
	} else if i := strings.LastIndex(ref, "/"); i >= 0 {
		name = ref[i+1:] // a key or URL: the store knows the prefix
	}
	rc, err := st.Open(ctx, name)
	if err != nil {
		return r, nil, "", fmt.Errorf("%s: %w", st.Where(name), err)
	}
	return r, rc, st.Where(name), nil
}

// latest returns the name of the newest dump in st, "" when there is none.
func (d *Dumper) latest(ctx context.Context, st store) (string, error) {
	names, err := st.List(ctx)
	if err != nil {
		return "", err
	}
	var dumps []string
	for _, n := range names {
		if _, ok := takenAt(d.name, n); ok {
			dumps = append(dumps, n)
		}
	}
	if len(dumps) == 0 {
		return "", nil
	}
	sort.Strings(dumps) // the timestamp sorts as text
	return dumps[len(dumps)-1], nil
}

// Latest returns the name of the newest dump in repository repo and where
// it is (file or S3 URL); "" when the repository holds none.
func (d *Dumper) Latest(ctx context.Context, repo int) (name, where string, err error) {
	r, err := d.br.Repo(repo)
	if err != nil {
		return "", "", exitcode.E(exitcode.Usage, err)
	}
	st, err := openStore(r, d.name)
	if err != nil {
		return "", "", err
	}
	if name, err = d.latest(ctx, st); err != nil || name == "" {
		return "", "", err
	}
	return name, st.Where(name), nil
}
