// Package archive reports how far WAL archiving has got, for the Nomad
// script check `wal-archive` on the database (`backup task check-archive`):
// one line of JSON, and an exit status Consul reads as passing (0),
// warning (1: the RPO is above its limit) or critical (2: archiving fails).
//
// The RPO is the age of the oldest WAL that exists only on this host. It is
// 0 when everything written is archived: the current WAL position is a
// segment boundary — the very start of the last closed segment's
// successor, with nothing written since (an idle server after an
// archive_timeout switch; PostgreSQL forces a switch only after activity)
// — and no closed segment waits for the archiver (no .ready file in
// pg_wal/archive_status). Otherwise some WAL is at risk and the RPO is the
// time since the archiver last succeeded: an upper bound, as that WAL was
// written after the previously archived segment closed. Before anything
// was archived the bound is the server's start. last_archived_wal itself
// is not compared with positions: it may name a .backup or .history file,
// and the archiver does not always push a backup's history file after the
// segments it follows. Times are the server's, so a skewed client clock
// does not shift the RPO.
package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
)

// Config is the check's limit.
type Config struct {
	// MaxRPO is the RPO above which the check warns.
	MaxRPO time.Duration `env:"BACKUP_MAX_RPO" default:"90s"`
}

// Status is the line the check prints.
type Status struct {
	LastArchivedWAL string     `json:"last_archived_wal"`
	LastArchivedAt  *time.Time `json:"last_archived_at"`
	FailedCount     int64      `json:"failed_count"`
	LastFailedAt    *time.Time `json:"last_failed_at"`
	RPOSeconds      int64      `json:"rpo_seconds"`
}

// Failing reports whether archiving is failing: the last failure is newer
// than the last success.
func (s Status) Failing() bool {
	if s.FailedCount == 0 || s.LastFailedAt == nil {
		return false
	}
	return s.LastArchivedAt == nil || s.LastFailedAt.After(*s.LastArchivedAt)
}

const query = `
SELECT coalesce(last_archived_wal, ''), last_archived_time, failed_count, last_failed_time,
       -- in recovery (a restore replaying WAL) the position is the replay's
       (CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END)::text,
       current_setting('wal_segment_size')::text,
       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
       pg_postmaster_start_time(), now()
FROM pg_stat_archiver`

// Read reads the archiver's state from the live server.
func Read(ctx context.Context, conn *pgx.Conn) (Status, error) {
	var (
		s                        Status
		lastWAL, lsn, segSetting string
		ready                    int64
		archived, failed         *time.Time
		started, now             time.Time
	)
	err := conn.QueryRow(ctx, query).Scan(&lastWAL, &archived, &s.FailedCount, &failed, &lsn, &segSetting, &ready, &started, &now)
	if err != nil {
		return Status{}, fmt.Errorf("read pg_stat_archiver: %w", err)
	}
	s.LastArchivedWAL, s.LastArchivedAt, s.LastFailedAt = lastWAL, utc(archived), utc(failed)
	segSize, err := parseSize(segSetting)
	if err != nil {
		return Status{}, err
	}
	cur, err := ParseLSN(lsn)
	if err != nil {
		return Status{}, err
	}
	s.RPOSeconds = int64(math.Ceil(RPO(cur, segSize, ready, archived, started, now).Seconds()))
	return s, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// RPO computes the recovery point objective as the package doc explains:
// cur is the current WAL position, ready the number of closed segments
// waiting for the archiver.
func RPO(cur, segSize uint64, ready int64, archivedAt *time.Time, started, now time.Time) time.Duration {
	if segSize > 0 && cur%segSize == 0 && ready == 0 {
		return 0
	}
	since := started
	if archivedAt != nil {
		since = *archivedAt
	}
	if d := now.Sub(since); d > 0 {
		return d
	}
	return 0
}

// ParseLSN reads PostgreSQL's "16/B374D848" notation.
func ParseLSN(s string) (uint64, error) {
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("lsn %q: %w", s, err)
	}
	return hi<<32 | lo, nil
}

func parseSize(s string) (uint64, error) {
	// current_setting gives "16MB"; accept plain bytes too.
	units := map[string]uint64{"": 1, "B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
	m := regexp.MustCompile(`^(\d+)\s*([a-zA-Z]*)$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("wal_segment_size %q", s)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	u, ok := units[m[2]]
	if !ok {
		return 0, fmt.Errorf("wal_segment_size %q: unknown unit", s)
	}
	return n * u, nil
}

// Check reads the status, prints it as one line of JSON to w and returns
// the error whose exit status Consul reads: Critical when archiving is
// failing, Failed (warning) when the RPO is above cfg.MaxRPO.
func Check(ctx context.Context, cfg Config, conn *pgx.Conn, w io.Writer) error {
	s, err := Read(ctx, conn)
	if err != nil {
		return exitcode.E(exitcode.Unreachable, err)
	}
	b, _ := json.Marshal(s)
	fmt.Fprintf(w, "%s\n", b)
	switch {
	case s.Failing():
		return exitcode.Quietly(exitcode.Critical, fmt.Errorf("archiving is failing since %s (%d failures)", s.LastFailedAt.Format(time.RFC3339), s.FailedCount))
	case time.Duration(s.RPOSeconds)*time.Second > cfg.MaxRPO:
		return exitcode.Quietly(exitcode.Failed, fmt.Errorf("RPO %ds is above %s", s.RPOSeconds, cfg.MaxRPO))
	}
	return nil
}
