// Package pgsums gives a database's tables figures that two copies of it
// can be compared by exactly: the restore drill compares a restored
// backup with the live data, and with the figures a dump carries of the
// snapshot it was taken in.
//
// Every user table (ordinary, permanent; unlogged tables are empty after
// any physical restore and are skipped) gets its row count and an
// order-independent checksum: the sum over its rows of the first 64 bits
// of md5(row::text), as numeric. A row's text depends on session settings
// (DateStyle, TimeZone, IntervalStyle, extra_float_digits, bytea_output,
// lc_monetary), so every side fixes them with Prepare before measuring.
// The schema version (the highest migration of each set in pgdb's
// schema_migrations) must match as well: equal rows under another schema
// would not be the same database.
package pgsums

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Figures are one table's row count and checksum.
type Figures struct {
	Rows int64  `json:"rows"`
	Sum  string `json:"sum"`
}

// Set is what one transaction saw of a database: the figures of every
// user table and the schema version.
type Set struct {
	Schema string             `json:"schema"`
	Tables map[string]Figures `json:"tables"`
}

// Rows is the total row count of the set.
func (s *Set) Rows() int64 {
	var n int64
	for _, f := range s.Tables {
		n += f.Rows
	}
	return n
}

// sessionSettings fix every setting that changes a row's text.
var sessionSettings = []string{
	"SET DateStyle = 'ISO, YMD'",
	"SET TimeZone = 'UTC'",
	"SET IntervalStyle = 'postgres'",
	"SET extra_float_digits = 3",
	"SET bytea_output = 'hex'",
	"SET lc_monetary = 'C'",
}

// Prepare fixes c's session settings that shape a row's text; it must run
// on every side of a comparison.
func Prepare(ctx context.Context, c *pgx.Conn) error {
	for _, s := range sessionSettings {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

const userTablesSQL = `
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY 1`

// UserTables lists the tables that are compared, schema-qualified and
// quoted by the server, so that they can be put into SQL as they are.
func UserTables(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, userTablesSQL)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Measure computes the figures of tables in c's current transaction.
// tables must come from UserTables: they go into the SQL unquoted.
func Measure(ctx context.Context, c *pgx.Conn, tables []string) (map[string]Figures, error) {
	out := make(map[string]Figures, len(tables))
	for _, t := range tables {
		var f Figures
		q := `SELECT count(*), coalesce(sum(('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0)::text FROM ONLY ` + t + ` AS r`
		if err := c.QueryRow(ctx, q).Scan(&f.Rows, &f.Sum); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t, err)
		}
		out[t] = f
	}
	return out, nil
}

// SchemaVersion returns the highest applied migration of each set in
// pgdb's schema_migrations, "auth:7,outbox:2"; "none" without the table.
func SchemaVersion(ctx context.Context, c *pgx.Conn) (string, error) {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return "", fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return "none", nil
	}
	var v string
	err := c.QueryRow(ctx, `SELECT coalesce(string_agg(set_name || ':' || v, ',' ORDER BY set_name), '')
		FROM (SELECT set_name, max(version) AS v FROM schema_migrations GROUP BY set_name) s`).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// Take measures every user table and the schema version in c's current
// transaction, which must be REPEATABLE READ (or c must have no other
// writer) for the figures to describe one state of the database.
func Take(ctx context.Context, c *pgx.Conn) (*Set, error) {
	tables, err := UserTables(ctx, c)
	if err != nil {
		return nil, err
	}
	figures, err := Measure(ctx, c, tables)
	if err != nil {
		return nil, err
	}
	schema, err := SchemaVersion(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Set{Schema: schema, Tables: figures}, nil
}
