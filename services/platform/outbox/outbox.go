// Package outbox is the transactional outbox: a message is written to the
// outbox_messages table in the same transaction as the business change it
// announces (so it exists if and only if the change committed), and a Relay
// hands it to a topic's Handler afterwards, at least once, retrying with
// backoff and keeping every row it sent or gave up on.
//
// A service applies Migrations beside its own set:
//
//	pgdb.Migrate(ctx, pool, log, serviceMigrations, outbox.Migrations)
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the outbox table. Services pass it to pgdb.Migrate (and
// tests to pgtest.New) next to their own set; it is versioned on its own.
var Migrations = pgdb.MigrationSet{Name: "outbox", FS: mustSub(migrationFiles, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// notifyChannel is the LISTEN/NOTIFY channel Enqueue signals on commit, so a
// relay sends at once instead of at its next poll. The payload is the topic.
const notifyChannel = "outbox_messages"

// Message is one message to deliver.
type Message struct {
	// ID identifies the message for good: a re-send carries the same ID, so
	// the receiver can recognise duplicates. Enqueue generates one if zero.
	ID      uuid.UUID
	Topic   string
	Payload json.RawMessage
	// OrderingKey, when set, makes the message wait until every message
	// queued before it with the same key is sent or dead (given up on).
	// Order among messages of one transaction follows their ids, which
	// Enqueue generates time-ordered (UUIDv7).
	OrderingKey string
	// RequestID is the id of the request that queued the message, logged
	// and passed on (X-Request-ID) with its delivery. Enqueue takes the
	// context's (httpx.RequestID) when it is empty.
	RequestID string
}

// The insert and the notification go in one statement: one round trip in
// the caller's transaction. PostgreSQL delivers the notification only if
// the transaction commits.
const insertMessage = `
WITH inserted AS (
	INSERT INTO outbox_messages (id, topic, payload, ordering_key, request_id) VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))
	RETURNING topic
)
SELECT pg_notify('` + notifyChannel + `', topic) FROM inserted`

// Enqueue writes m into the outbox within tx, the caller's transaction, and
// returns the ID it was stored under (m.ID, or a new one if that was zero).
// The message is sent only if tx commits.
func Enqueue(ctx context.Context, tx pgx.Tx, m Message) (uuid.UUID, error) {
	if m.Topic == "" {
		return uuid.Nil, errors.New("enqueue: message has no topic")
	}
	if !json.Valid(m.Payload) {
		return uuid.Nil, fmt.Errorf("enqueue %s: payload is not valid JSON", m.Topic)
	}
	if m.ID == uuid.Nil {
		id, err := uuid.NewV7() // time-ordered: friendlier to the primary key index
		if err != nil {
			return uuid.Nil, fmt.Errorf("enqueue %s: %w", m.Topic, err)
		}
		m.ID = id
	}
	if m.RequestID == "" {
		m.RequestID = httpx.RequestID(ctx)
	}
	if _, err := tx.Exec(ctx, insertMessage, m.ID, m.Topic, []byte(m.Payload), m.OrderingKey, m.RequestID); err != nil {
		return uuid.Nil, fmt.Errorf("enqueue %s %s: %w", m.Topic, m.ID, err)
	}
	return m.ID, nil
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps a handler's error to say that retrying cannot succeed (the
// receiver rejected the message itself): the relay marks the message dead
// at once instead of retrying it. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
