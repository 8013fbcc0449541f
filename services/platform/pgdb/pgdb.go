// Package pgdb opens a service's PostgreSQL pool, waiting for the database
// to come up, runs transactions, applies the service's embedded SQL
// migrations, and gives stores the names of the constraints a statement
// broke, to answer in their domain's words.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/backoff"
)

// Config is the database part of a service's configuration.
type Config struct {
	URL      string `env:"DATABASE_URL" required:"true" secret:"true"`
	MaxConns int32  `env:"DATABASE_MAX_CONNS" default:"10"`
	// ConnectTimeout bounds how long Open waits for the database at start
	// (a database task starting next to the service).
	ConnectTimeout time.Duration `env:"DATABASE_CONNECT_TIMEOUT" default:"60s"`
	// Lookup resolves the URL's host each time a connection opens (pgx's
	// LookupFunc); it may answer "ip:port". The services set it to their
	// discovery resolver's LookupHost, so that DATABASE_URL names
	// "<db>.service.consul" and a database that moves is found without a
	// restart. Nil is the system resolver.
	Lookup func(ctx context.Context, host string) ([]string, error)
}

// Open connects a pool and waits, with exponential backoff, until the
// database answers a ping or cfg.ConnectTimeout passes.
func Open(ctx context.Context, cfg Config, log hclog.Logger) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.Lookup != nil {
		pc.ConnConfig.LookupFunc = cfg.Lookup
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	deadline := time.Now().Add(cfg.ConnectTimeout)
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return pool, nil
		}
		// Jittered, so that the instances of a service started together
		// do not knock on a database coming up in step.
		wait := backoff.Delay(attempt, 100*time.Millisecond, 5*time.Second)
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("database %s not reachable after %d attempts: %w", pc.ConnConfig.Host, attempt, err)
		}
		log.Warn("database not reachable yet", "host", pc.ConnConfig.Host, "attempt", attempt, "retry_in", wait.String(), "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// OpenMigrated is Open followed by Migrate of sets: what every service does
// at start.
func OpenMigrated(ctx context.Context, cfg Config, log hclog.Logger, sets ...MigrationSet) (*pgxpool.Pool, error) {
	pool, err := Open(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, pool, log, sets...); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Ping is a readiness check for server.Check.
func Ping(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error { return pool.Ping(ctx) }
}

// Querier is what pgx pools, connections and transactions share, so store
// functions run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InTx runs fn in a transaction on pool: committed when fn returns nil,
// rolled back otherwise (and when fn panics).
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// InSerializableTx is InTx at SERIALIZABLE isolation, retried a few times on
// serialization failures, for the rare rule a conditional update cannot
// express.
func InSerializableTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if !isSerializationFailure(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

func isSerializationFailure(err error) bool {
	var pg interface{ SQLState() string }
	return errors.As(err, &pg) && (pg.SQLState() == "40001" || pg.SQLState() == "40P01")
}

// Violated reports whether err is PostgreSQL's refusal of a statement that
// breaks an integrity constraint (SQLSTATE class 23: unique, foreign key,
// check, not null, exclusion), and names the constraint.
func Violated(err error) (constraint string, ok bool) {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || !strings.HasPrefix(pg.Code, "23") {
		return "", false
	}
	return pg.ConstraintName, true
}

// Constraints names, for the integrity constraints of a schema, the error
// a client reads when a statement breaks one: an *apierr.Error with words
// the store wrote. The entry "" serves every constraint not listed.
//
// PostgreSQL's own message names tables, constraints and sometimes the
// values of other rows, and only the store knows what a constraint means
// (a key already taken, a row deleted meanwhile, a rule the code above
// should have enforced): so each store maps its schema's, and nothing maps
// them for every caller.
type Constraints map[string]error

// Map returns err unchanged unless Violated reports a broken constraint;
// then it returns the error c names for that constraint with err wrapped
// behind it. A client reads the domain's words alone (httpx writes the
// message of the *apierr.Error in the chain, not the chain's), while the
// log and errors.As still see PostgreSQL's. A constraint c does not name,
// when c has no "" entry, leaves err as it is: an Internal error.
func (c Constraints) Map(err error) error {
	name, ok := Violated(err)
	if !ok {
		return err
	}
	domain, ok := c[name]
	if !ok {
		domain = c[""]
	}
	if domain == nil {
		return err
	}
	return fmt.Errorf("%w: %w", domain, err)
}
