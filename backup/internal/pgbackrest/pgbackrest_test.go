package pgbackrest

import (
	"strings"
	"testing"
	"time"
)

// verifyReport is what pgBackRest 2.45's verify prints at
// --log-level-console=info for a backup with one corrupt file (it exits 0).
const verifyReport = `2026-12-02 20:38:53.211 P00   INFO: verify command begin 2.45: --config=/dev/null --repo=1 --stanza=db
2026-12-02 20:38:53.611 P01   INFO: invalid checksum '20261202-203831F/pg_data/base/5/16389.gz'
2026-12-02 20:38:53.812 P00   INFO: stanza: db
                                    status: error
                                      backup: 20261202-203831F, status: invalid, total files checked: 968, total valid files: 967
                                        checksum invalid: 1
2026-12-02 20:38:53.812 P00   INFO: verify command end: completed successfully (603ms)
`

func TestVerifyProblems(t *testing.T) {
	t.Parallel()
	m := verifyProblem.FindAllStringSubmatch(verifyReport, -1)
	if len(m) != 1 || m[0][1] != "invalid checksum '20261202-203831F/pg_data/base/5/16389.gz'" {
		t.Fatalf("got %q, want the one invalid checksum line", m)
	}
	if s := summary(verifyReport); !strings.Contains(s, "status: error") || strings.Contains(s, "\n") {
		t.Fatalf("summary %q", s)
	}
}

func TestRepos(t *testing.T) {
	t.Parallel()
	one := Config{Repo1: Repo1Config{Type: "posix", Path: "/r1"}}
	if r := one.Repos(); len(r) != 1 || r[0].Name() != "repo1" {
		t.Fatalf("repo2 unset: got %+v", r)
	}
	if _, err := one.Repo(2); err == nil {
		t.Fatal("repo2 found while not configured")
	}
	two := Config{Repo1: Repo1Config{Type: "posix"}, Repo2: Repo2Config{Type: "s3", Path: "/p"}}
	if err := two.Validate(); err == nil {
		t.Fatal("an s3 repo2 without bucket and endpoint passed")
	}
	if got := TimeTarget(time.Date(2026, 11, 10, 13, 4, 5, 120000000, time.FixedZone("x", 3600))); got != "2026-11-10 12:04:05.12+00" {
		t.Fatalf("TimeTarget: %q", got)
	}
}
