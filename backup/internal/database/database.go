// Package database connects the backup tasks to the PostgreSQL server they
// run next to: over its unix socket, as the postgres OS user (peer
// authentication), with libpq's variables read once by main.
package database

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config is the live database and the binaries of its server.
type Config struct {
	Host string `env:"PGHOST" required:"true"` // the socket folder
	Port int    `env:"PGPORT" default:"5432"`
	User string `env:"PGUSER" default:"postgres"`
	Name string `env:"PGDATABASE" required:"true"`
	Bin  string `env:"PG_BIN" default:"/usr/lib/postgresql/15/bin"`
}

// ConnString returns the keyword/value connection string of database name
// on the socket folder host and port.
func ConnString(host string, port int, user, name string) string {
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5", q(host), port, q(user), q(name))
}

// ConnString returns the live database's connection string.
func (c Config) ConnString() string { return ConnString(c.Host, c.Port, c.User, c.Name) }

// Connect opens one connection to the live database.
func (c Config) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		return nil, fmt.Errorf("connect to %s on %s:%d: %w", c.Name, c.Host, c.Port, err)
	}
	return conn, nil
}

// WaitReady waits until connString accepts connections and answers, or
// timeout passes; it returns the last error then.
func WaitReady(ctx context.Context, connString string, timeout time.Duration, check func(context.Context, *pgx.Conn) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			ok := true
			if check != nil {
				ok, err = check(ctx, conn)
			}
			conn.Close(context.Background())
			if err == nil && ok {
				return nil
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("not ready after %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
