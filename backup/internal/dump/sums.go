package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/backup/internal/pgsums"
)

// SumsPrefix starts the last line of a dump: an SQL comment (psql skips
// it) holding the figures of the snapshot the dump was taken in, as JSON:
//
//	-- mylittleshopping-backup-sums: {"schema":"orders:2","tables":{"public.orders":{"rows":2001,"sum":"…"}}}
const SumsPrefix = "-- mylittleshopping-backup-sums: "

// maxSumsLine bounds the line buffered while looking for the sums: a few
// dozen bytes per table; a longer line is some table's data.
const maxSumsLine = 16 << 20

// sumsLine returns the trailer line of s, newline included. JSON never
// holds a raw newline, so the line cannot break whatever the table names.
func sumsLine(s *pgsums.Set) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return SumsPrefix + string(b) + "\n", nil
}

// snapshot opens the transaction the dump is taken in, exports its
// snapshot for pg_dump --snapshot and measures it, so that the figures
// describe exactly the rows pg_dump writes, however busy the database.
// The caller keeps the transaction open until pg_dump has exited: the
// snapshot can only be imported while it is, and the ACCESS SHARE locks
// Measure took keep the tables from being dropped or rewritten before
// pg_dump locks them itself.
func snapshot(ctx context.Context, c *pgx.Conn) (string, *pgsums.Set, error) {
	if err := pgsums.Prepare(ctx, c); err != nil {
		return "", nil, err
	}
	// The session idles in its transaction for as long as pg_dump runs.
	if _, err := c.Exec(ctx, "SET idle_in_transaction_session_timeout = 0"); err != nil {
		return "", nil, err
	}
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return "", nil, err
	}
	// The first query fixes the transaction's snapshot: the one exported.
	var snap string
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		return "", nil, fmt.Errorf("export snapshot: %w", err)
	}
	set, err := pgsums.Take(ctx, c)
	if err != nil {
		return "", nil, err
	}
	return snap, set, nil
}

// sumsFinder watches a dump's SQL script go by and keeps its last
// non-empty line when that line is the sums. Only the last line counts: a
// row of table data may start like the sums, but pg_dump's own footer
// always follows the data.
type sumsFinder struct {
	line    []byte // the current line, while it may be the sums
	n       int    // the current line's length so far
	notSums bool   // the current line does not start like the sums
	last    []byte // the last non-empty line, when it is the sums
}

func (f *sumsFinder) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		seg, rest, newline := bytes.Cut(p, []byte{'\n'})
		f.n += len(seg)
		if !f.notSums {
			// Compare the part of the prefix seg covers before keeping it.
			have := len(f.line)
			k := min(have+len(seg), len(SumsPrefix))
			if (have < k && string(seg[:k-have]) != SumsPrefix[have:k]) || have+len(seg) > maxSumsLine {
				f.notSums, f.line = true, f.line[:0]
			} else {
				f.line = append(f.line, seg...)
			}
		}
		if !newline {
			break
		}
		f.endLine()
		p = rest
	}
	return written, nil
}

func (f *sumsFinder) endLine() {
	if f.n > 0 {
		f.last = nil
		if !f.notSums && len(f.line) >= len(SumsPrefix) {
			f.last = bytes.Clone(f.line)
		}
	}
	f.line, f.n, f.notSums = f.line[:0], 0, false
}

// sums returns the figures on the script's last line, nil when it has none.
func (f *sumsFinder) sums() (*pgsums.Set, error) {
	f.endLine() // a last line without its newline
	if f.last == nil {
		return nil, nil
	}
	var s pgsums.Set
	if err := json.Unmarshal(f.last[len(SumsPrefix):], &s); err != nil {
		return nil, fmt.Errorf("the sums on the dump's last line are unreadable: %w", err)
	}
	if s.Tables == nil {
		s.Tables = map[string]pgsums.Figures{}
	}
	return &s, nil
}

// CatSums is Cat that also returns the figures the dump carries on its
// last line: nil for a dump written before dumps carried them.
func (d *Dumper) CatSums(ctx context.Context, ref string, repo int, w io.Writer) (*pgsums.Set, error) {
	var f sumsFinder
	if err := d.Cat(ctx, ref, repo, io.MultiWriter(w, &f)); err != nil {
		return nil, err
	}
	return f.sums()
}
