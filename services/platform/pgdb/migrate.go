package pgdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrationSet is a named folder of forward-only migrations, files named
// NNNN_what_it_does.sql. A service applies its own set and those of the
// platform packages it uses (the outbox), each versioned on its own.
type MigrationSet struct {
	Name string
	FS   fs.FS
}

// Migration is one file of a set.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// Load reads and orders the set's migrations, refusing misnamed files and
// duplicate versions.
func (s MigrationSet) Load() ([]Migration, error) {
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			if len(e.Name()) > 4 && e.Name()[len(e.Name())-4:] == ".sql" {
				return nil, fmt.Errorf("migrations %s: %s is not named NNNN_lower_snake.sql", s.Name, e.Name())
			}
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s: %s and %s share version %d", s.Name, prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(body), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrateLockID is the advisory lock that serialises migrations when
// several instances of a service start at once.
const migrateLockID = 0x6d6c73_6d6967 // "mls" "mig"

const (
	createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	set_name   text        NOT NULL,
	version    integer     NOT NULL,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (set_name, version)
)`
	selectApplied   = `SELECT version, name, checksum FROM schema_migrations WHERE set_name = $1`
	insertMigration = `INSERT INTO schema_migrations (set_name, version, name, checksum) VALUES ($1, $2, $3, $4)`
)

// Migrate applies, in order and each in its own transaction, the migrations
// of every set not applied yet. A session advisory lock makes concurrent
// starts wait for each other. An applied migration whose file changed is an
// error: migrations are forward-only, a change is a new file.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log hclog.Logger, sets ...MigrationSet) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		return fmt.Errorf("migrate lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockID)
	}()
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, set := range sets {
		if err := migrateSet(ctx, conn.Conn(), log, set); err != nil {
			return err
		}
	}
	return nil
}

func migrateSet(ctx context.Context, conn *pgx.Conn, log hclog.Logger, set MigrationSet) error {
	migs, err := set.Load()
	if err != nil {
		return err
	}
	applied := map[int]Migration{}
	rows, err := conn.Query(ctx, selectApplied, set.Name)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", set.Name, err)
	}
	for rows.Next() {
		var m Migration
		if err := rows.Scan(&m.Version, &m.Name, &m.Checksum); err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		applied[m.Version] = m
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrations %s: %w", set.Name, err)
	}
	for _, m := range migs {
		if done, ok := applied[m.Version]; ok {
			if done.Checksum != m.Checksum {
				return fmt.Errorf("migrations %s: %s was changed after it was applied; add a new migration instead", set.Name, m.Name)
			}
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, insertMigration, set.Name, m.Version, m.Name, m.Checksum)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s/%s: %w", set.Name, m.Name, err)
		}
		log.Info("migration applied", "set", set.Name, "migration", m.Name)
	}
	return nil
}
