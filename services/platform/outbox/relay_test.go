package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/metrics/metricstest"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a fresh database with the outbox table, a mail sink standing
// for Mailjet, and the production email handler pointed at it.
type fixture struct {
	pool    *pgxpool.Pool
	sink    *mailsink.Sink
	sinkURL string
	send    outbox.Handler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := logging.ForTest(t)
	pool := pgtest.New(t, outbox.Migrations)

	var sinkCfg mailsink.Config
	if err := config.Load(&sinkCfg, config.MapLookup(nil)); err != nil {
		t.Fatal(err)
	}
	sink, err := mailsink.New(sinkCfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.Middleware(log, sink))
	t.Cleanup(srv.Close)

	var mailCfg mail.Config
	err = config.Load(&mailCfg, config.MapLookup(map[string]string{
		"MAILJET_API_KEY_PUBLIC":  "public-key",
		"MAILJET_API_KEY_PRIVATE": "private-key",
		"MAILJET_BASE_URL":        srv.URL,
		"MAIL_FROM_EMAIL":         "shop@example.com",
		"MAIL_SEND_TIMEOUT":       "800ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mail.NewSender(mailCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, sink: sink, sinkURL: srv.URL, send: mail.Handler(sender)}
}

// relayConfig is the relay's configuration as a service loads it, with
// short timings for tests and the given overrides.
func relayConfig(t *testing.T, overrides map[string]string) outbox.RelayConfig {
	t.Helper()
	env := map[string]string{
		"OUTBOX_POLL_INTERVAL":   "20ms",
		"OUTBOX_BACKOFF_BASE":    "20ms",
		"OUTBOX_BACKOFF_MAX":     "100ms",
		"OUTBOX_HANDLER_TIMEOUT": "1s",
		"OUTBOX_LEASE":           "5s",
	}
	for k, v := range overrides {
		env[k] = v
	}
	var cfg outbox.RelayConfig
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startRelay runs a relay until the returned stop is called (at the latest
// when the test ends); stop waits for Run to return.
func startRelay(t *testing.T, name string, pool *pgxpool.Pool, cfg outbox.RelayConfig, h outbox.Handler) (*outbox.Relay, func()) {
	t.Helper()
	r, err := outbox.NewRelay(pool, cfg, map[string]outbox.Handler{mail.Topic: h}, logging.ForTest(t).Named(name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay %s: Run returned %v, want nil", name, err)
		}
	})
	t.Cleanup(stop)
	return r, stop
}

func email(to string) mail.Message {
	return mail.Message{To: []mail.Address{{Email: to}}, Subject: "Hello", Text: "Hello " + to}
}

// enqueue commits one email per address in one transaction.
func enqueue(t *testing.T, pool *pgxpool.Pool, to ...string) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	err := pgdb.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		for _, addr := range to {
			id, err := mail.Enqueue(context.Background(), tx, email(addr))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// row is a message's state in the table.
type row struct {
	Attempts  int
	Sent      bool
	Dead      bool
	Claimed   bool
	LastError string
	// Elapsed is from enqueue to sent or dead.
	Elapsed time.Duration
}

func readRow(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) row {
	t.Helper()
	var r row
	var lastErr *string
	var elapsedUS *int64
	err := pool.QueryRow(context.Background(), `
SELECT attempts, sent_at IS NOT NULL, dead_at IS NOT NULL, claimed_until IS NOT NULL, last_error,
	(extract(epoch FROM coalesce(sent_at, dead_at) - created_at) * 1000000)::bigint
FROM outbox_messages WHERE id = $1`, id).Scan(&r.Attempts, &r.Sent, &r.Dead, &r.Claimed, &lastErr, &elapsedUS)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	if lastErr != nil {
		r.LastError = *lastErr
	}
	if elapsedUS != nil {
		r.Elapsed = time.Duration(*elapsedUS) * time.Microsecond
	}
	return r
}

func stats(t *testing.T, r *outbox.Relay) outbox.Stats {
	t.Helper()
	s, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.OldestPending = time.Time{}
	return s
}

// failNext drives the sink's failure injection over HTTP, as a journey does.
func failNext(t *testing.T, sinkURL string, count, status int) {
	t.Helper()
	body := fmt.Sprintf(`{"count": %d, "status": %d}`, count, status)
	resp, err := http.Post(sinkURL+"/control/fail", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /control/fail: got %d, want 204", resp.StatusCode)
	}
}

// A relay that dies after Mailjet accepted a message but before it recorded
// the send leaves the message claimed. When the lease expires another relay
// sends it again, with the same message id as CustomID: at least once, and
// recognisably a duplicate. The dead relay's late report, if it ever comes,
// changes nothing.
func TestRelayResendsAfterLeaseWhenKilledBeforeRecording(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := relayConfig(t, map[string]string{"OUTBOX_LEASE": "1500ms", "OUTBOX_HANDLER_TIMEOUT": "1s"})
	id := enqueue(t, f.pool, "ann@example.com")[0]

	sentByA := make(chan struct{})
	release := make(chan struct{})
	releaseA := sync.OnceFunc(func() { close(release) })
	var once sync.Once
	// Relay A sends through the real handler, then freezes as a killed (or
	// stopped, or partitioned) process does: it records nothing until long
	// after its lease expired.
	frozen := func(ctx context.Context, d outbox.Delivery) error {
		err := f.send(ctx, d)
		once.Do(func() { close(sentByA) })
		<-release
		if err != nil {
			return err
		}
		return errors.New("connection reset after the request was sent")
	}
	_, stopA := startRelay(t, "relay-a", f.pool, cfg, frozen)
	defer releaseA() // before stopA runs in cleanup, should the test fail early
	select {
	case <-sentByA:
	case <-time.After(5 * time.Second):
		t.Fatal("relay A did not send within 5s")
	}
	if got := readRow(t, f.pool, id); !got.Claimed || got.Sent || got.Attempts != 1 {
		t.Fatalf("after A's send got %+v, want claimed, not sent, 1 attempt", got)
	}

	relayB, _ := startRelay(t, "relay-b", f.pool, cfg, f.send)
	waitFor(t, 10*time.Second, "relay B to send the message again", func() bool {
		return len(f.sink.Messages(mailsink.Filter{})) >= 2
	})
	waitFor(t, 5*time.Second, "relay B to record the send", func() bool { return readRow(t, f.pool, id).Sent })

	got := f.sink.Messages(mailsink.Filter{})
	if len(got) != 2 {
		t.Fatalf("got %d messages in the sink, want 2 (A's and B's)", len(got))
	}
	for _, m := range got {
		if m.Message.CustomID != id.String() || m.Message.Headers[mail.MessageIDHeader] != id.String() {
			t.Errorf("message %d: got CustomID %q header %q, want both %s", m.Seq, m.Message.CustomID, m.Message.Headers[mail.MessageIDHeader], id)
		}
	}
	if got[0].Recipients[0].MessageUUID == got[1].Recipients[0].MessageUUID {
		t.Error("got one Mailjet message UUID for both sends, want two sends")
	}

	// A wakes up believing its send failed. It no longer holds the claim,
	// so its report must not turn B's success into a retry.
	releaseA()
	stopA()
	want := row{Attempts: 2, Sent: true}
	if diff := cmp.Diff(want, readRow(t, f.pool, id), cmpIgnoreElapsed); diff != "" {
		t.Errorf("row after A's late report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(outbox.Stats{Sent: 1}, stats(t, relayB)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

var cmpIgnoreElapsed = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Elapsed" }, cmp.Ignore())

// While Mailjet fails, the relay retries each message with growing delays,
// counting every attempt; when it recovers everything is sent, once.
func TestRelayRetriesWithBackoffUntilSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const base = 40 * time.Millisecond
	cfg := relayConfig(t, map[string]string{"OUTBOX_BACKOFF_BASE": "40ms", "OUTBOX_BACKOFF_MAX": "400ms", "OUTBOX_POLL_INTERVAL": "10ms"})
	const failures = 7
	failNext(t, f.sinkURL, failures, http.StatusServiceUnavailable)
	ids := enqueue(t, f.pool, "a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com")
	relay, _ := startRelay(t, "relay", f.pool, cfg, f.send)

	waitFor(t, 10*time.Second, "every message to be sent", func() bool { return stats(t, relay).Sent == int64(len(ids)) })
	if diff := cmp.Diff(outbox.Stats{Sent: int64(len(ids))}, stats(t, relay)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	total := 0
	for _, id := range ids {
		r := readRow(t, f.pool, id)
		total += r.Attempts
		if n := len(f.sink.Messages(mailsink.Filter{CustomID: id.String()})); n != 1 {
			t.Errorf("message %s: got %d copies in the sink, want 1", id, n)
		}
		if r.Attempts == 1 {
			continue
		}
		if !strings.Contains(r.LastError, "503") {
			t.Errorf("message %s: got last error %q, want Mailjet's 503", id, r.LastError)
		}
		// Equal jitter waits at least half of each nominal delay.
		var least time.Duration
		for a := 1; a < r.Attempts; a++ {
			least += (base << (a - 1)) / 2
		}
		if r.Elapsed < least {
			t.Errorf("message %s: sent %v after enqueue in %d attempts, want at least %v of backoff", id, r.Elapsed, r.Attempts, least)
		}
	}
	// Each refused request used exactly one attempt of one message.
	if want := len(ids) + failures; total != want {
		t.Errorf("got %d attempts in all, want %d (%d sends + %d failures)", total, want, len(ids), failures)
	}
}

// An email enqueued in a transaction that rolls back does not exist: the
// relay never sees it.
func TestRolledBackEnqueueIsNeverSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	errRule := errors.New("the order breaks a rule")
	err := pgdb.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := mail.Enqueue(ctx, tx, email("rolled-back@example.com")); err != nil {
			return err
		}
		return errRule
	})
	if !errors.Is(err, errRule) {
		t.Fatalf("got %v, want the business error", err)
	}
	committed := enqueue(t, f.pool, "committed@example.com")[0]
	startRelay(t, "relay", f.pool, relayConfig(t, nil), f.send)

	waitFor(t, 5*time.Second, "the committed email", func() bool {
		return len(f.sink.Messages(mailsink.Filter{CustomID: committed.String()})) == 1
	})
	if got := f.sink.Messages(mailsink.Filter{To: "rolled-back@example.com"}); len(got) != 0 {
		t.Errorf("got %d rolled-back emails in the sink, want 0", len(got))
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("got %d outbox rows, want 1 (the committed one)", n)
	}
}

// Relays on one database share the work without ever sending a message
// twice when nothing fails: claims skip what another relay holds.
func TestRelaysSendEachMessageOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const relays, n = 4, 200
	cfg := relayConfig(t, map[string]string{"OUTBOX_BATCH_SIZE": "5", "OUTBOX_POLL_INTERVAL": "10ms"})
	sent := make([]atomic.Int64, relays)
	var first *outbox.Relay
	var stops []func()
	for i := range relays {
		// Each relay has its own pool, as service instances would.
		pool, err := pgxpool.NewWithConfig(context.Background(), f.pool.Config())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		counting := func(ctx context.Context, d outbox.Delivery) error {
			sent[i].Add(1)
			return f.send(ctx, d)
		}
		r, stop := startRelay(t, fmt.Sprintf("relay-%d", i), pool, cfg, counting)
		if first == nil {
			first = r
		}
		stops = append(stops, stop)
	}
	// All idle and listening, so that the commit below wakes them at the
	// same instant and their first claims race for the same rows.
	waitFor(t, 5*time.Second, "every relay to listen", func() bool {
		var listening int
		err := f.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN outbox_messages'`).Scan(&listening)
		return err == nil && listening == relays
	})
	to := make([]string, n)
	for i := range to {
		to[i] = fmt.Sprintf("user%03d@example.com", i)
	}
	ids := enqueue(t, f.pool, to...)

	waitFor(t, 20*time.Second, "every message to be sent", func() bool { return stats(t, first).Sent == n })
	for _, stop := range stops {
		stop() // nothing can be sent after this
	}

	got := f.sink.Messages(mailsink.Filter{})
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Message.CustomID]++
	}
	for _, id := range ids {
		if c := seen[id.String()]; c != 1 {
			t.Errorf("message %s: sent %d times, want 1", id, c)
		}
	}
	if len(got) != n {
		t.Errorf("got %d messages in the sink, want %d", len(got), n)
	}
	var attempts int
	if err := f.pool.QueryRow(context.Background(), `SELECT sum(attempts) FROM outbox_messages`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != n {
		t.Errorf("got %d attempts in all, want %d (one claim per message)", attempts, n)
	}
	working := 0
	for i := range sent {
		t.Logf("relay-%d sent %d", i, sent[i].Load())
		if sent[i].Load() > 0 {
			working++
		}
	}
	if working < 2 {
		t.Errorf("got %d relays sending, want at least 2 (the test proves nothing otherwise)", working)
	}
}

// A message Mailjet refuses, or one whose attempts are used up, is marked
// dead and kept, and no relay tries it again.
func TestDeadMessagesAreKeptAndNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failStatus   int
		maxAttempts  string
		wantAttempts int
	}{
		{"Mailjet refuses the message", http.StatusBadRequest, "150", 1},
		{"attempts used up", http.StatusBadGateway, "3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			failNext(t, f.sinkURL, 1000, tt.failStatus)
			doomed := enqueue(t, f.pool, "doomed@example.com")[0]
			cfg := relayConfig(t, map[string]string{"OUTBOX_MAX_ATTEMPTS": tt.maxAttempts, "OUTBOX_POLL_INTERVAL": "10ms"})
			relay, _ := startRelay(t, "relay", f.pool, cfg, f.send)
			waitFor(t, 10*time.Second, "the message to die", func() bool { return readRow(t, f.pool, doomed).Dead })

			// The next claim would take the dead row with this one if it
			// were claimable: it is due at once (no backoff once dead).
			failNext(t, f.sinkURL, 0, http.StatusInternalServerError)
			ok := enqueue(t, f.pool, "fine@example.com")[0]
			waitFor(t, 5*time.Second, "a later message to be sent", func() bool { return readRow(t, f.pool, ok).Sent })

			got := readRow(t, f.pool, doomed)
			if got.Attempts != tt.wantAttempts || !got.Dead || got.Sent || got.Claimed {
				t.Errorf("got %+v, want dead, kept, %d attempts", got, tt.wantAttempts)
			}
			if !strings.Contains(got.LastError, fmt.Sprint(tt.failStatus)) {
				t.Errorf("got last error %q, want Mailjet's %d", got.LastError, tt.failStatus)
			}
			if n := len(f.sink.Messages(mailsink.Filter{CustomID: doomed.String()})); n != 0 {
				t.Errorf("got %d copies of the dead message in the sink, want 0", n)
			}
			if diff := cmp.Diff(outbox.Stats{Sent: 1, Dead: 1}, stats(t, relay)); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

// Enqueue's notification wakes a relay at once: it does not wait for its
// next poll.
func TestEnqueueWakesRelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := relayConfig(t, map[string]string{"OUTBOX_POLL_INTERVAL": "1m"})
	startRelay(t, "relay", f.pool, cfg, f.send)
	waitFor(t, 5*time.Second, "the relay to listen", func() bool {
		var n int
		err := f.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN outbox_messages'`).Scan(&n)
		return err == nil && n == 1
	})
	// Twice: the first may still be caught by the relay's start-up claims;
	// the second can only be sent on its notification.
	for _, to := range []string{"first@example.com", "second@example.com"} {
		id := enqueue(t, f.pool, to)[0]
		waitFor(t, 5*time.Second, "the relay to send "+to, func() bool {
			return len(f.sink.Messages(mailsink.Filter{CustomID: id.String()})) == 1
		})
	}
}

// Stopping a relay lets the delivery in flight finish and records it, so a
// planned restart sends nothing twice.
func TestStopRecordsDeliveryInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := enqueue(t, f.pool, "ann@example.com")[0]
	started := make(chan struct{})
	proceed := make(chan struct{})
	slow := func(ctx context.Context, d outbox.Delivery) error {
		close(started)
		<-proceed
		return f.send(ctx, d)
	}
	_, stop := startRelay(t, "relay", f.pool, relayConfig(t, nil), slow)
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(proceed)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not stop within 5s")
	}
	want := row{Attempts: 1, Sent: true}
	if diff := cmp.Diff(want, readRow(t, f.pool, id), cmpIgnoreElapsed); diff != "" {
		t.Errorf("row after stop (-want +got):\n%s", diff)
	}
	if n := len(f.sink.Messages(mailsink.Filter{})); n != 1 {
		t.Errorf("got %d messages in the sink, want 1", n)
	}
}

// A handler that panics costs an attempt, not the relay.
func TestHandlerPanicIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := enqueue(t, f.pool, "ann@example.com")[0]
	var calls atomic.Int32
	flaky := func(ctx context.Context, d outbox.Delivery) error {
		if calls.Add(1) == 1 {
			panic("nil map")
		}
		return f.send(ctx, d)
	}
	startRelay(t, "relay", f.pool, relayConfig(t, nil), flaky)
	waitFor(t, 5*time.Second, "the retry to send", func() bool { return readRow(t, f.pool, id).Sent })
	got := readRow(t, f.pool, id)
	if got.Attempts != 2 || !strings.Contains(got.LastError, "panicked: nil map") {
		t.Errorf("got %+v, want 2 attempts and the panic as last error", got)
	}
}

// A relay claims only its own topics: another topic's messages wait,
// untouched, for a relay that handles them.
func TestRelayLeavesOtherTopics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var other uuid.UUID
	err := pgdb.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		var err error
		other, err = outbox.Enqueue(ctx, tx, outbox.Message{Topic: "sms", Payload: json.RawMessage(`{"to":"+33600000000"}`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, f.pool, "ann@example.com")[0]
	relay, _ := startRelay(t, "relay", f.pool, relayConfig(t, nil), f.send)
	waitFor(t, 5*time.Second, "the email to be sent", func() bool { return readRow(t, f.pool, id).Sent })
	if got := readRow(t, f.pool, other); got != (row{}) {
		t.Errorf("got %+v for the other topic's message, want it untouched", got)
	}
	if diff := cmp.Diff(outbox.Stats{Pending: 1, Sent: 1}, stats(t, relay)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// Any error text is recorded, even one that is not valid UTF-8, holds NUL
// bytes or is cut mid-character: PostgreSQL refuses such text, and an
// unrecordable failure would be retried at every lease expiry, forever.
func TestUnprintableErrorIsRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := enqueue(t, f.pool, "ann@example.com")[0]
	var calls atomic.Int32
	garbled := func(ctx context.Context, d outbox.Delivery) error {
		if calls.Add(1) == 1 {
			return errors.New("bad \xff\x00 bytes " + strings.Repeat("é", 1500))
		}
		return f.send(ctx, d)
	}
	startRelay(t, "relay", f.pool, relayConfig(t, nil), garbled)
	waitFor(t, 5*time.Second, "the retry to send", func() bool { return readRow(t, f.pool, id).Sent })
	got := readRow(t, f.pool, id)
	if got.Attempts != 2 || !got.Sent {
		t.Errorf("got %d attempts, sent %v, want 2 and sent", got.Attempts, got.Sent)
	}
	// Invalid bytes marked, NUL dropped, cut between characters.
	if !strings.HasPrefix(got.LastError, "bad \uFFFD bytes éé") || !strings.HasSuffix(got.LastError, "éé") || len(got.LastError) > 2000 {
		t.Errorf("got last error %.40q…%q (%d bytes), want it cleaned and cut between characters", got.LastError, got.LastError[max(0, len(got.LastError)-8):], len(got.LastError))
	}
}

func TestEnqueueRejectsBadMessages(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, outbox.Migrations)
	ctx := context.Background()
	fixed := uuid.Must(uuid.NewV7())
	tests := []struct {
		name    string
		msg     outbox.Message
		wantErr bool
		wantID  uuid.UUID
	}{
		{"no topic", outbox.Message{Payload: json.RawMessage(`{}`)}, true, uuid.Nil},
		{"payload not JSON", outbox.Message{Topic: "t", Payload: json.RawMessage(`{`)}, true, uuid.Nil},
		{"no payload", outbox.Message{Topic: "t"}, true, uuid.Nil},
		{"given id kept", outbox.Message{ID: fixed, Topic: "t", Payload: json.RawMessage(`{"a":1}`)}, false, fixed},
		{"id generated", outbox.Message{Topic: "t", Payload: json.RawMessage(`[]`)}, false, uuid.Nil},
	}
	for _, tt := range tests {
		var got uuid.UUID
		err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			got, err = outbox.Enqueue(ctx, tx, tt.msg)
			return err
		})
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if tt.wantID != uuid.Nil && got != tt.wantID {
			t.Errorf("%s: got id %s, want %s", tt.name, got, tt.wantID)
		}
		var payload string
		if err := pool.QueryRow(ctx, `SELECT payload::text FROM outbox_messages WHERE id = $1`, got).Scan(&payload); err != nil {
			t.Errorf("%s: stored row %s: %v", tt.name, got, err)
		}
	}
	// The id is the primary key: enqueuing it twice is an error, not a
	// second message.
	err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := outbox.Enqueue(ctx, tx, outbox.Message{ID: fixed, Topic: "t", Payload: json.RawMessage(`{}`)})
		return err
	})
	if err == nil {
		t.Error("got nil for a duplicate id, want an error")
	}
}

func TestRelayConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"lease not longer than handler timeout", map[string]string{"OUTBOX_LEASE": "15s", "OUTBOX_HANDLER_TIMEOUT": "15s"}},
		{"batch of zero", map[string]string{"OUTBOX_BATCH_SIZE": "0"}},
		{"backoff cap under base", map[string]string{"OUTBOX_BACKOFF_BASE": "2s", "OUTBOX_BACKOFF_MAX": "1s"}},
		{"no attempts", map[string]string{"OUTBOX_MAX_ATTEMPTS": "0"}},
		{"no poll", map[string]string{"OUTBOX_POLL_INTERVAL": "0s"}},
	}
	var defaults outbox.RelayConfig
	if err := config.Load(&defaults, config.MapLookup(nil)); err != nil {
		t.Fatalf("defaults: got %v, want a valid configuration", err)
	}
	for _, tt := range tests {
		var cfg outbox.RelayConfig
		if err := config.Load(&cfg, config.MapLookup(tt.env)); err == nil {
			t.Errorf("%s: got nil, want an error", tt.name)
		}
	}
	if _, err := outbox.NewRelay(nil, defaults, nil, logging.ForTest(t)); err == nil {
		t.Error("NewRelay without handlers: got nil, want an error")
	}
}

// TestOrderingKeyKeepsARecipientsEmailsInOrder: one recipient's first email
// fails and waits in backoff; the emails queued after it for the same
// address wait too and arrive in queue order, while another recipient's
// email is not held back.
func TestOrderingKeyKeepsARecipientsEmailsInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := relayConfig(t, map[string]string{"OUTBOX_BACKOFF_BASE": "300ms", "OUTBOX_BACKOFF_MAX": "300ms", "OUTBOX_POLL_INTERVAL": "10ms"})
	failNext(t, f.sinkURL, 1, http.StatusServiceUnavailable)
	first := enqueue(t, f.pool, "ann@example.com")[0]
	relay, _ := startRelay(t, "relay", f.pool, cfg, f.send)
	waitFor(t, 5*time.Second, "the first email to fail once", func() bool { return readRow(t, f.pool, first).Attempts == 1 })

	later := enqueue(t, f.pool, "ANN@example.com", "bob@example.com")
	last := enqueue(t, f.pool, "ann@example.com")[0]
	waitFor(t, 10*time.Second, "every email to be sent", func() bool { return stats(t, relay).Sent == 4 })

	seq := map[string]int64{}
	for _, m := range f.sink.Messages(mailsink.Filter{}) {
		seq[m.Message.CustomID] = m.Seq
	}
	order := []uuid.UUID{first, later[0], last}
	for i := 1; i < len(order); i++ {
		if seq[order[i-1].String()] >= seq[order[i].String()] {
			t.Errorf("ann's email %d arrived before email %d (seq %d vs %d), want queue order",
				i+1, i, seq[order[i].String()], seq[order[i-1].String()])
		}
	}
	if seq[later[1].String()] >= seq[first.String()] {
		t.Errorf("bob's email (seq %d) waited for ann's retry (seq %d), want it sent at once", seq[later[1].String()], seq[first.String()])
	}
}

// A message's delivery carries the id of the request that queued it: in the
// delivery, in the handler's context (and so in the lines its logger writes
// through logging.Of), and on the send itself as X-Request-ID, so that the
// receiver's log names it too. A message queued outside a request has none.
func TestDeliveryCarriesTheQueuingRequestsID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seen := make(chan string, 4)
	sinkURL, err := url.Parse(f.sinkURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(sinkURL)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get(httpx.RequestIDHeader)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(recorder.Close)
	var mailCfg mail.Config
	if err := config.Load(&mailCfg, config.MapLookup(map[string]string{
		"MAILJET_API_KEY_PUBLIC": "public-key", "MAILJET_API_KEY_PRIVATE": "private-key",
		"MAILJET_BASE_URL": recorder.URL, "MAIL_FROM_EMAIL": "shop@example.com",
	})); err != nil {
		t.Fatal(err)
	}
	sender, err := mail.NewSender(mailCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	send := mail.Handler(sender)

	var logs bytes.Buffer
	base := hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true})
	type got struct{ delivery, ctx string }
	delivered := make(chan got, 4)
	handler := func(ctx context.Context, d outbox.Delivery) error {
		logging.Of(ctx, base).Info("handling", "to", d.ID.String())
		delivered <- got{d.RequestID, httpx.RequestID(ctx)}
		return send(ctx, d)
	}
	queued := httpx.WithRequestID(context.Background(), "req-checkout-1")
	for _, ctx := range []context.Context{queued, context.Background()} {
		if err := pgdb.InTx(ctx, f.pool, func(tx pgx.Tx) error {
			_, err := mail.Enqueue(ctx, tx, email("ann@example.com"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	startRelay(t, "relay", f.pool, relayConfig(t, map[string]string{"OUTBOX_BATCH_SIZE": "1"}), handler)
	var ids, sent []string
	for range 2 {
		select {
		case g := <-delivered:
			if g.delivery != g.ctx {
				t.Errorf("delivery's request id %q, its context's %q: want the same", g.delivery, g.ctx)
			}
			ids = append(ids, g.delivery)
		case <-time.After(10 * time.Second):
			t.Fatal("the two messages were not delivered")
		}
		select {
		case id := <-seen:
			sent = append(sent, id)
		case <-time.After(10 * time.Second):
			t.Fatal("a send did not reach the receiver")
		}
	}
	slices.Sort(ids)
	slices.Sort(sent)
	if want := []string{"", "req-checkout-1"}; !slices.Equal(ids, want) || !slices.Equal(sent, want) {
		t.Errorf("deliveries' request ids %q, sends' X-Request-ID %q; want %q for both", ids, sent, want)
	}
	if n := strings.Count(logs.String(), `"request_id":"req-checkout-1"`); n != 1 {
		t.Errorf("the handler's lines name the request %d times, want 1:\n%s", n, logs.String())
	}
}

// The backlog a scrape reports is the database's: a message still to send
// counts as pending with its age, a failing one as retrying, one given up
// on as dead, and the relay's own outcomes are counted by topic.
func TestCollectorReportsTheBacklog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var failing atomic.Bool
	failing.Store(true)
	handler := func(ctx context.Context, d outbox.Delivery) error {
		if failing.Load() {
			return errors.New("provider down")
		}
		return f.send(ctx, d)
	}
	relay, stop := startRelay(t, "relay", f.pool, relayConfig(t, map[string]string{"OUTBOX_BACKOFF_BASE": "50ms", "OUTBOX_BACKOFF_MAX": "50ms", "OUTBOX_MAX_ATTEMPTS": "1000"}), handler)
	reg := prometheus.NewRegistry()
	reg.MustRegister(relay.Collector())

	id := enqueue(t, f.pool, "ann@example.com")[0]
	if _, err := f.pool.Exec(context.Background(), `UPDATE outbox_messages SET created_at = now() - interval '10 minutes' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a failed attempt", func() bool {
		v, _ := metricstest.Gather(t, reg).Value("outbox_deliveries_total", "topic", mail.Topic, "outcome", "retry")
		return v >= 1
	})
	m := metricstest.Gather(t, reg)
	if v, _ := m.Value("outbox_messages", "state", "pending"); v != 1 {
		t.Errorf("pending = %v, want 1", v)
	}
	if v, _ := m.Value("outbox_oldest_pending_age_seconds"); v < 600 || v > 700 {
		t.Errorf("oldest pending age = %vs, want about 600s", v)
	}
	if v, ok := m.Value("outbox_deliveries_total", "topic", mail.Topic, "outcome", "sent"); !ok || v != 0 {
		t.Errorf("sent = %v (present %v), want 0 from the start", v, ok)
	}

	failing.Store(false)
	waitFor(t, 5*time.Second, "the message sent", func() bool { return readRow(t, f.pool, id).Sent })
	stop()
	m = metricstest.Gather(t, reg)
	if v, _ := m.Value("outbox_messages", "state", "pending"); v != 0 {
		t.Errorf("pending after the send = %v, want 0", v)
	}
	if v, _ := m.Value("outbox_oldest_pending_age_seconds"); v != 0 {
		t.Errorf("oldest pending age after the send = %v, want 0", v)
	}
	if v, _ := m.Value("outbox_deliveries_total", "topic", mail.Topic, "outcome", "sent"); v != 1 {
		t.Errorf("sent = %v, want 1", v)
	}
	if v, _ := m.Value("outbox_messages", "state", "dead"); v != 0 {
		t.Errorf("dead = %v, want 0", v)
	}
}
