package apierr_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestDataExceptionsAreInvalid sends PostgreSQL values it refuses as the
// client's input would reach it: each data exception (SQLSTATE class 22)
// is the client's fault (400), never an Internal 500 that a caller would
// count as the service's own failure.
func TestDataExceptionsAreInvalid(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	tests := []struct {
		name, sql string
		arg       any
	}{
		{"NUL in text (22021)", `SELECT $1::text`, "a\x00b"},
		{"integer out of range (22003)", `SELECT $1::bigint::integer`, int64(1) << 40},
		{"bad timestamp (22007)", `SELECT $1::text::timestamptz`, "yesterday-ish"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out any
			err := db.QueryRow(context.Background(), tt.sql, tt.arg).Scan(&out)
			if err == nil {
				t.Fatalf("got no error, want a data exception")
			}
			err = fmt.Errorf("search products: %w", err)
			if got := apierr.KindOf(err); got != apierr.Invalid {
				t.Errorf("got kind %v, want %v (error %v)", got, apierr.Invalid, err)
			}
			e, _ := apierr.As(err)
			if got := e.Error(); got != "a value of the request is out of range or is not text the shop can store" {
				t.Errorf("got detail %q, want words without PostgreSQL's internals", got)
			}
		})
	}
}

// TestSerializationFailuresAreUnavailable provokes PostgreSQL's refusal of
// two serializable transactions that each read what the other writes: the
// client is told to retry, in words without PostgreSQL's.
func TestSerializationFailuresAreUnavailable(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	pgtest.Exec(t, db, `CREATE TABLE marks (n int)`)
	var txs [2]pgx.Tx
	for i := range txs {
		tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT count(*) FROM marks`); err != nil {
			t.Fatal(err)
		}
		txs[i] = tx
	}
	for _, tx := range txs {
		if _, err := tx.Exec(ctx, `INSERT INTO marks VALUES (1)`); err != nil {
			t.Fatal(err)
		}
	}
	if err := txs[0].Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err := txs[1].Commit(ctx)
	pgtest.SafeProblem(t, err, http.StatusServiceUnavailable, "the request met a concurrent change of the same data; retry it")
}
