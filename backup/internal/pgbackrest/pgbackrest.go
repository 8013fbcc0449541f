// Package pgbackrest runs the pgBackRest commands the backup tasks need
// (backup, verify, info, restore, stanza-create, check) and reads their
// results. pgBackRest is configured entirely by its PGBACKREST_* environment,
// which the Nomad jobs set and main passes through; Config holds the few of
// those options the backup command itself needs (the stanza, the data
// folder, the repositories: which exist, where, and their cipher passes).
package pgbackrest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config is what the backup command reads of pgBackRest's own environment.
type Config struct {
	Bin        string `env:"PGBACKREST_BIN" default:"pgbackrest"`
	Stanza     string `env:"PGBACKREST_STANZA" required:"true"`
	PGPath     string `env:"PGBACKREST_PG1_PATH" required:"true"`
	SocketPath string `env:"PGBACKREST_PG1_SOCKET_PATH"`
	Repo1      Repo1Config
	Repo2      Repo2Config
}

// Repo1Config is repository 1: on the host (posix), always present.
type Repo1Config struct {
	Type       string `env:"PGBACKREST_REPO1_TYPE" default:"posix"`
	Path       string `env:"PGBACKREST_REPO1_PATH" default:"/var/lib/pgbackrest"`
	CipherPass string `env:"PGBACKREST_REPO1_CIPHER_PASS" secret:"true"`
}

// Repo2Config is repository 2, off the host: absent when neither its type
// nor its path is set. The S3 fields are those of pgBackRest's repo2-s3-*
// and repo2-storage-* options.
type Repo2Config struct {
	Type       string `env:"PGBACKREST_REPO2_TYPE"`
	Path       string `env:"PGBACKREST_REPO2_PATH"`
	CipherPass string `env:"PGBACKREST_REPO2_CIPHER_PASS" secret:"true"`
	S3Bucket   string `env:"PGBACKREST_REPO2_S3_BUCKET"`
	S3Endpoint string `env:"PGBACKREST_REPO2_S3_ENDPOINT"`
	S3Region   string `env:"PGBACKREST_REPO2_S3_REGION" default:"us-east-1"`
	S3Key      string `env:"PGBACKREST_REPO2_S3_KEY" secret:"true"`
	S3Secret   string `env:"PGBACKREST_REPO2_S3_KEY_SECRET" secret:"true"`
	S3URIStyle string `env:"PGBACKREST_REPO2_S3_URI_STYLE" default:"host"`
	Port       int    `env:"PGBACKREST_REPO2_STORAGE_PORT" default:"443"`
	CAFile     string `env:"PGBACKREST_REPO2_STORAGE_CA_FILE"`
	VerifyTLS  string `env:"PGBACKREST_REPO2_STORAGE_VERIFY_TLS" default:"y"`
}

// Repo is one configured repository.
type Repo struct {
	Index      int
	Type       string // posix or s3
	Path       string
	CipherPass string
	// S3 is set for an S3 repository.
	S3 *Repo2Config
}

// Name is how messages and records name the repository: repo1, repo2.
func (r Repo) Name() string { return "repo" + strconv.Itoa(r.Index) }

// Validate refuses repositories the backup command cannot handle.
func (c *Config) Validate() error {
	var errs []error
	if c.Repo1.Type != "posix" {
		errs = append(errs, fmt.Errorf("PGBACKREST_REPO1_TYPE=%s: repo1 must be posix (on the host)", c.Repo1.Type))
	}
	if c.Repo2.Configured() {
		switch c.Repo2.Type {
		case "", "posix":
		case "s3":
			if c.Repo2.S3Bucket == "" || c.Repo2.S3Endpoint == "" {
				errs = append(errs, errors.New("repo2 is s3: PGBACKREST_REPO2_S3_BUCKET and PGBACKREST_REPO2_S3_ENDPOINT are required"))
			}
		default:
			errs = append(errs, fmt.Errorf("PGBACKREST_REPO2_TYPE=%s: only posix and s3 are supported", c.Repo2.Type))
		}
	}
	return errors.Join(errs...)
}

// Configured reports whether repo2 exists.
func (c Repo2Config) Configured() bool { return c.Type != "" || c.Path != "" }

// Repos returns the configured repositories, repo1 first.
func (c Config) Repos() []Repo {
	repos := []Repo{{Index: 1, Type: "posix", Path: c.Repo1.Path, CipherPass: c.Repo1.CipherPass}}
	if c.Repo2.Configured() {
		r := Repo{Index: 2, Type: c.Repo2.Type, Path: c.Repo2.Path, CipherPass: c.Repo2.CipherPass}
		if r.Type == "" {
			r.Type = "posix"
		}
		if r.Path == "" {
			r.Path = "/var/lib/pgbackrest"
		}
		if r.Type == "s3" {
			s3 := c.Repo2
			r.S3 = &s3
		}
		repos = append(repos, r)
	}
	return repos
}

// Repo returns repository n, or an error naming the configured ones.
func (c Config) Repo(n int) (Repo, error) {
	for _, r := range c.Repos() {
		if r.Index == n {
			return r, nil
		}
	}
	return Repo{}, fmt.Errorf("repo%d is not configured (%d repositories)", n, len(c.Repos()))
}

// Client runs pgBackRest with the process's environment plus, per call,
// overrides (the scratch data folder of a drill).
type Client struct {
	cfg     Config
	environ []string
	log     hclog.Logger
}

// New returns a client; environ is the environment pgBackRest runs with
// (os.Environ() in main: it carries every PGBACKREST_* option).
func New(cfg Config, environ []string, log hclog.Logger) *Client {
	return &Client{cfg: cfg, environ: environ, log: log}
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// Error is a pgBackRest command that failed: its exit status and the
// ERROR lines it printed.
type Error struct {
	Command string
	Exit    int
	Message string
}

func (e *Error) Error() string {
	if e.Exit == 0 { // a report read as a failure (verify)
		return fmt.Sprintf("pgbackrest %s: %s", e.Command, e.Message)
	}
	return fmt.Sprintf("pgbackrest %s: exit %d: %s", e.Command, e.Exit, e.Message)
}

// errorLine finds pgBackRest's own error lines ("ERROR: [055]: …").
var errorLine = regexp.MustCompile(`(?m)(?:ERROR|WARN): (?:\[\d+\]: )?.*$`)

// run runs pgbackrest with args and returns its standard output; on failure
// an *Error with the error lines.
func (c *Client) run(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.cfg.Bin, args...)
	// Stopped (Nomad's SIGTERM reaches main's context): let pgBackRest
	// end cleanly, releasing its locks, before it is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = append(append([]string{}, c.environ...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	c.log.Debug("pgbackrest", "args", strings.Join(args, " "), "took", time.Since(start).Round(time.Millisecond), "error", err)
	if err == nil {
		return stdout.String(), nil
	}
	var exit *exec.ExitError
	e := &Error{Command: strings.Join(args, " "), Exit: -1}
	if errors.As(err, &exit) {
		e.Exit = exit.ExitCode()
	}
	lines := errorLine.FindAllString(stderr.String()+"\n"+stdout.String(), -1)
	if len(lines) == 0 {
		e.Message = strings.TrimSpace(stderr.String())
		if e.Message == "" {
			e.Message = err.Error()
		}
	} else {
		e.Message = strings.Join(lines, "; ")
	}
	return stdout.String(), e
}

func repoArg(n int) string { return "--repo=" + strconv.Itoa(n) }

// Backup takes a backup of type full, diff or incr into repository repo.
func (c *Client) Backup(ctx context.Context, repo int, typ string) error {
	_, err := c.run(ctx, nil, "backup", "--type="+typ, repoArg(repo))
	return err
}

// StanzaCreate creates the stanza in every repository (idempotent).
func (c *Client) StanzaCreate(ctx context.Context) error {
	_, err := c.run(ctx, nil, "stanza-create")
	return err
}

// Check checks the configuration and that WAL reaches every repository.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.run(ctx, nil, "check")
	return err
}

// verifyProblem matches the lines in which verify names a file it found
// wrong ("invalid checksum '20261202-203831F/pg_data/base/5/16389.gz'").
var verifyProblem = regexp.MustCompile(`(?m)P\d\d\s+(?:INFO|WARN|ERROR|DETAIL): ((?:invalid|missing|file|unable|checksum|size)[^\n]*'[^'\n]+'[^\n]*)$`)

// Verify checks every file of repository repo against its checksum.
// pgBackRest 2.45's verify exits 0 even when it found corrupt files, so
// the result is read from its report: a "status: error" fails, with the
// lines that name the files.
func (c *Client) Verify(ctx context.Context, repo int) error {
	out, err := c.run(ctx, nil, "verify", repoArg(repo), "--log-level-console=info")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "status: error") {
		return nil
	}
	var problems []string
	for _, m := range verifyProblem.FindAllStringSubmatch(out, -1) {
		problems = append(problems, m[1])
	}
	if len(problems) == 0 {
		problems = append(problems, summary(out))
	}
	return &Error{Command: "verify " + repoArg(repo), Message: "repo" + strconv.Itoa(repo) + " has corrupt files: " + strings.Join(problems, "; ")}
}

// summary returns verify's report (from "stanza:") on one line.
func summary(out string) string {
	i := strings.Index(out, "stanza:")
	if i < 0 {
		return strings.TrimSpace(out)
	}
	end := strings.Index(out[i:], "verify command end")
	s := out[i:]
	if end > 0 {
		s = out[i : i+end]
	}
	return strings.Join(strings.Fields(s), " ")
}

// Stanza status codes of `pgbackrest info` (its src/command/info/info.c).
const (
	StatusOK               = 0
	StatusMissingStanza    = 1
	StatusNoBackup         = 2
	StatusMissingStanzaDat = 3
	StatusOther            = 99
)

// Info is the part of `pgbackrest info --output=json` for one stanza that
// the backup command reads.
type Info struct {
	Name   string     `json:"name"`
	Status InfoStatus `json:"status"`
	Repo   []struct {
		Key    int        `json:"key"`
		Status InfoStatus `json:"status"`
	} `json:"repo"`
	Backup []InfoBackup `json:"backup"`
}

// InfoStatus is a status code and message of the info report.
type InfoStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// InfoBackup is one backup set as info reports it.
type InfoBackup struct {
	Label   string `json:"label"`
	Type    string `json:"type"`
	Error   bool   `json:"error"`
	Archive struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	Info struct {
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size  int64 `json:"size"`
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
	Timestamp struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	Database struct {
		RepoKey int `json:"repo-key"`
	} `json:"database"`
}

// BackupSet is a backup set in the flat form the records keep.
type BackupSet struct {
	Label     string    `json:"label"`
	Type      string    `json:"type"`
	Start     time.Time `json:"start"`
	Stop      time.Time `json:"stop"`
	Size      int64     `json:"size_bytes"`       // the database's size
	Delta     int64     `json:"delta_bytes"`      // what this backup copied
	RepoSize  int64     `json:"repo_size_bytes"`  // stored, compressed
	RepoDelta int64     `json:"repo_delta_bytes"` // stored by this backup
	WALStart  string    `json:"wal_start"`
	WALStop   string    `json:"wal_stop"`
}

// Set returns the backup in its flat form.
func (b InfoBackup) Set() BackupSet {
	return BackupSet{
		Label: b.Label, Type: b.Type,
		Start: time.Unix(b.Timestamp.Start, 0).UTC(), Stop: time.Unix(b.Timestamp.Stop, 0).UTC(),
		Size: b.Info.Size, Delta: b.Info.Delta, RepoSize: b.Info.Repository.Size, RepoDelta: b.Info.Repository.Delta,
		WALStart: b.Archive.Start, WALStop: b.Archive.Stop,
	}
}

// RepoStatus returns the status info reports for repository repo (the
// stanza's when the repository is not listed).
func (i Info) RepoStatus(repo int) InfoStatus {
	for _, r := range i.Repo {
		if r.Key == repo {
			return r.Status
		}
	}
	return i.Status
}

// Latest returns the newest backup set, false when there is none.
func (i Info) Latest() (InfoBackup, bool) {
	if len(i.Backup) == 0 {
		return InfoBackup{}, false
	}
	return i.Backup[len(i.Backup)-1], true
}

// ErrRepo is a repository that could not be read: unreachable, a wrong
// cipher pass, a damaged info file. It is not "no backup".
var ErrRepo = errors.New("repository unreadable")

// Info reads the stanza's info in repository repo. A repository without
// the stanza or without backups is not an error (Info.Backup is empty);
// one that info cannot read is, wrapping ErrRepo.
func (c *Client) Info(ctx context.Context, repo int) (Info, error) {
	out, err := c.run(ctx, nil, "info", "--output=json", repoArg(repo))
	if err != nil {
		return Info{}, fmt.Errorf("repo%d: %w: %w", repo, ErrRepo, err)
	}
	var infos []Info
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		return Info{}, fmt.Errorf("repo%d: %w: read info: %w", repo, ErrRepo, err)
	}
	for _, in := range infos {
		if in.Name != c.cfg.Stanza {
			continue
		}
		st := in.RepoStatus(repo)
		switch st.Code {
		case StatusOK, StatusMissingStanza, StatusNoBackup, StatusMissingStanzaDat:
			return in, nil
		default:
			return in, fmt.Errorf("repo%d: %w: %s (info status %d)", repo, ErrRepo, st.Message, st.Code)
		}
	}
	return Info{Name: c.cfg.Stanza, Status: InfoStatus{Code: StatusMissingStanza, Message: "missing stanza"}}, nil
}

// RestoreOptions says what to restore where.
type RestoreOptions struct {
	// Repo is the repository to restore from; 0 lets pgBackRest take the
	// first that has a suitable backup.
	Repo int
	// PGPath is the data folder; empty: PGBACKREST_PG1_PATH.
	PGPath string
	// Type is pgBackRest's recovery type: default (end of WAL), time, name.
	Type string
	// Target is the time (pgBackRest's format) or the restore point name.
	Target string
	// TargetAction is what PostgreSQL does at the target: promote.
	TargetAction string
	// Delta restores over an existing data folder, changing only what differs.
	Delta bool
	// ArchiveOff writes archive_mode=off into the restored configuration,
	// for a scratch server that must never push WAL into the stanza.
	ArchiveOff bool
}

var restoredSet = regexp.MustCompile(`restore backup set (\S+?),`)

// Restore restores a backup and returns the label of the backup set
// pgBackRest chose.
func (c *Client) Restore(ctx context.Context, o RestoreOptions) (string, error) {
	args := []string{"restore", "--log-level-console=info"}
	var env []string
	if o.Repo != 0 {
		args = append(args, repoArg(o.Repo))
	}
	if o.PGPath != "" {
		args = append(args, "--pg1-path="+o.PGPath)
		env = append(env, "PGBACKREST_PG1_PATH="+o.PGPath)
	}
	if o.Type != "" {
		args = append(args, "--type="+o.Type)
	}
	if o.Target != "" {
		args = append(args, "--target="+o.Target)
	}
	if o.TargetAction != "" {
		args = append(args, "--target-action="+o.TargetAction)
	}
	if o.Delta {
		args = append(args, "--delta")
	}
	if o.ArchiveOff {
		args = append(args, "--archive-mode=off")
	}
	out, err := c.run(ctx, env, args...)
	if err != nil {
		return "", err
	}
	label := ""
	if m := restoredSet.FindStringSubmatch(out); m != nil {
		label = m[1]
	}
	return label, nil
}

// TimeTarget formats t as pgBackRest and PostgreSQL read a recovery target
// time ("2006-01-02 15:04:05.999999+00"); RFC 3339's T and Z are not
// understood by pgBackRest's backup-set selection.
func TimeTarget(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}
