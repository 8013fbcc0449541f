// Package records keeps the result of every backup task in Consul KV, at
// mylittleshopping/backup/<db>/<kind>, where `backup status` reads them
// from an operator's machine (which has no pgBackRest). One key per kind
// holds the latest attempt; a failed attempt carries the last successful
// one along (LastOK), so a failure never hides how old the newest good
// backup is.
package records

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/cronexpr"

	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
)

// Prefix is the KV folder of the records.
const Prefix = "mylittleshopping/backup"

// The kinds of records.
const (
	Full    = "full"
	Incr    = "incr"
	Dump    = "dump"
	Drill   = "drill"
	Restore = "restore"
)

// Kinds lists every kind, in the order status prints them.
var Kinds = []string{Full, Incr, Dump, Drill, Restore}

// Key returns the KV key of a database's record of a kind.
func Key(db, kind string) string { return Prefix + "/" + db + "/" + kind }

// Duration is a time.Duration that reads and writes as "1m2.5s".
type Duration time.Duration

// MarshalJSON writes the duration as Go formats it.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Round(time.Millisecond).String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats the duration rounded to the millisecond.
func (d Duration) String() string { return time.Duration(d).Round(time.Millisecond).String() }

// Record is the result of one task run.
type Record struct {
	DB        string       `json:"db"`
	Kind      string       `json:"kind"`
	Started   time.Time    `json:"started"`
	Finished  time.Time    `json:"finished"`
	OK        bool         `json:"ok"`
	Error     string       `json:"error,omitempty"`
	SizeBytes int64        `json:"size_bytes"`
	Duration  Duration     `json:"duration"`
	Repos     []RepoResult `json:"repos,omitempty"`
	Dumped    *Dumped      `json:"dumped,omitempty"`
	Drill     *DrillResult `json:"drill,omitempty"`
	Restore   *Restored    `json:"restore,omitempty"`
	// LastOK is the newest successful record of this kind, kept when this
	// attempt failed.
	LastOK *Record `json:"last_ok,omitempty"`
}

// RepoResult is what a task did in one repository.
type RepoResult struct {
	Repo  int    `json:"repo"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Backup is the backup set pgBackRest reports after a full or incr.
	Backup *pgbackrest.BackupSet `json:"backup,omitempty"`
	// Object is the dump's file or S3 key.
	Object    string   `json:"object,omitempty"`
	SizeBytes int64    `json:"size_bytes,omitempty"`
	Deleted   []string `json:"deleted,omitempty"`
}

// DrillResult is a restore drill's comparison.
type DrillResult struct {
	Repo           int           `json:"repo"`
	RestorePoint   string        `json:"restore_point"`
	LSN            string        `json:"lsn"`
	Label          string        `json:"backup_label,omitempty"`
	SchemaLive     string        `json:"schema_live"`
	SchemaRestored string        `json:"schema_restored"`
	Tables         []TableResult `json:"tables"`
	Verify         string        `json:"verify,omitempty"`
	// Dump is the check of the repository's latest dump, run after the
	// physical part whatever its outcome.
	Dump *DumpCheck `json:"dump,omitempty"`
}

// Dumped is what a dump holds by the figures it carries (its trailer):
// what `task drill` will find when it restores the dump.
type Dumped struct {
	Schema string `json:"schema"`
	Tables int    `json:"tables"`
	Rows   int64  `json:"rows"`
}

// The outcomes of a dump check.
const (
	DumpEqual  = "equal"
	DumpFailed = "failed"
	// DumpNone: the repository holds no dump of the database yet; the
	// drill does not fail for it (the dump's own record says why).
	DumpNone = "no dump yet"
	// DumpNoSums: the dump restored with psql but carries no figures to
	// compare with (written before dumps had them); not a failure.
	DumpNoSums = "no sums in this dump (written before sums)"
)

// DumpCheck is the drill's restore of the latest dump with psql into an
// empty server, compared with the figures the dump carries of the
// snapshot it was taken in. In Tables, "live" is that snapshot.
type DumpCheck struct {
	Name           string        `json:"name,omitempty"`
	Object         string        `json:"object,omitempty"`
	Outcome        string        `json:"outcome"`
	SchemaDump     string        `json:"schema_dump,omitempty"`
	SchemaRestored string        `json:"schema_restored,omitempty"`
	Tables         []TableResult `json:"tables,omitempty"`
	Error          string        `json:"error,omitempty"`
}

// Summary is the check in a few words, for the drill's Consul check and
// `backup status`.
func (dc *DumpCheck) Summary() string {
	switch dc.Outcome {
	case DumpNone:
		return "dump: " + dc.Outcome
	case DumpEqual:
		return fmt.Sprintf("dump %s: %d tables equal", dc.Name, len(dc.Tables))
	case DumpNoSums:
		return fmt.Sprintf("dump %s: restored with psql, %s", dc.Name, dc.Outcome)
	}
	return fmt.Sprintf("dump %s: %s", dc.Name, dc.Error)
}

// TableResult compares one table, live (as of the restore point, or the
// dump's snapshot) and restored.
type TableResult struct {
	Table        string `json:"table"`
	LiveRows     int64  `json:"live_rows"`
	RestoredRows int64  `json:"restored_rows"`
	LiveSum      string `json:"live_checksum"`
	RestoredSum  string `json:"restored_checksum"`
	Equal        bool   `json:"equal"`
}

// Restored describes a restore into the live data folder.
type Restored struct {
	From   string   `json:"from"`
	Label  string   `json:"backup_label"`
	Target string   `json:"recovery_target"`
	Took   Duration `json:"took"`
	// RecoveredTo is the commit time of the last transaction the recovery
	// replayed: the point in time the database is back at (task restored).
	RecoveredTo string `json:"recovered_to,omitempty"`
}

// Finish sets Finished, Duration and the outcome from err.
func (r *Record) Finish(err error) {
	r.Finished = time.Now().UTC()
	r.Duration = Duration(r.Finished.Sub(r.Started))
	r.OK = err == nil
	if err != nil {
		r.Error = err.Error()
	}
}

// Store reads and writes records in Consul KV.
type Store struct {
	kv *api.KV
}

// NewStore returns a store on the client's KV.
func NewStore(c *api.Client) *Store { return &Store{kv: c.KV()} }

// Put writes r as its database's latest record of its kind. A failed
// record inherits the last successful one from the record it replaces.
func (s *Store) Put(ctx context.Context, r *Record) error {
	if !r.OK {
		prev, err := s.Get(ctx, r.DB, r.Kind)
		if err != nil {
			return err
		}
		switch {
		case prev == nil:
		case prev.OK:
			prev.LastOK = nil
			r.LastOK = prev
		default:
			r.LastOK = prev.LastOK
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	q := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := s.kv.Put(&api.KVPair{Key: Key(r.DB, r.Kind), Value: b}, q); err != nil {
		return fmt.Errorf("write record %s: %w", Key(r.DB, r.Kind), err)
	}
	return nil
}

// Get returns a database's latest record of a kind, nil when there is none.
func (s *Store) Get(ctx context.Context, db, kind string) (*Record, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	p, _, err := s.kv.Get(Key(db, kind), q)
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", Key(db, kind), err)
	}
	if p == nil {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal(p.Value, &r); err != nil {
		return nil, fmt.Errorf("record %s: %w", Key(db, kind), err)
	}
	return &r, nil
}

// LastOK returns the newest successful record: r itself when it succeeded,
// else the one it carries (nil when there has been none).
func LastOK(r *Record) *Record {
	if r == nil {
		return nil
	}
	if r.OK {
		return r
	}
	return r.LastOK
}

// Counted returns, for each scheduled kind, the record its schedule is
// judged by: the last successful full backup (full), the newest successful
// full or incremental backup (incr: a full backup is a base the next
// incremental needs no older one for), the last successful dump and drill.
// A kind with no success is absent.
func Counted(recs map[string]*Record) map[string]*Record {
	out := map[string]*Record{}
	put := func(kind string, r *Record) {
		if r != nil {
			out[kind] = r
		}
	}
	full, incr := LastOK(recs[Full]), LastOK(recs[Incr])
	put(Full, full)
	put(Incr, full)
	if incr != nil && (full == nil || incr.Finished.After(full.Finished)) {
		put(Incr, incr)
	}
	put(Dump, LastOK(recs[Dump]))
	put(Drill, LastOK(recs[Drill]))
	return out
}

// Allowed returns how old the record a schedule is judged by may be: one
// period of the cron spec (the gap after its next run, so a monthly or
// weekday schedule gets its longest gap when it comes) plus slack. A spec
// may end in " (<time zone>)", as `backup status` prints it; false when
// it does not parse.
func Allowed(spec string, now time.Time, slack time.Duration) (time.Duration, bool) {
	spec = strings.TrimSpace(strings.SplitN(spec, " (", 2)[0])
	expr, err := cronexpr.Parse(spec)
	if err != nil {
		return 0, false
	}
	next := expr.Next(now)
	after := expr.Next(next)
	if next.IsZero() || after.IsZero() {
		return 0, false
	}
	return after.Sub(next) + slack, true
}
