package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newSink serves a mail sink; env configures it.
func newSink(t *testing.T, env map[string]string) (*mailsink.Sink, string) {
	t.Helper()
	var cfg mailsink.Config
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	log := logging.ForTest(t)
	sink, err := mailsink.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.Middleware(log, sink))
	t.Cleanup(srv.Close)
	return sink, srv.URL
}

// newSender loads a sender's configuration as a service does, for baseURL.
func newSender(t *testing.T, baseURL string, overrides map[string]string) *mail.Sender {
	t.Helper()
	env := map[string]string{
		"MAILJET_API_KEY_PUBLIC":  "public-key",
		"MAILJET_API_KEY_PRIVATE": "private-key",
		"MAILJET_BASE_URL":        baseURL,
		"MAIL_FROM_EMAIL":         "shop@example.com",
		"MAIL_FROM_NAME":          "Shop",
		"MAIL_SEND_TIMEOUT":       "2s",
	}
	for k, v := range overrides {
		env[k] = v
	}
	var cfg mail.Config
	if err := config.Load(&cfg, config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	s, err := mail.NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var welcome = mail.Message{
	To:      []mail.Address{{Email: "ann@example.com", Name: "Ann Smith"}, {Email: "bob@example.com"}},
	Subject: "Verify your address",
	Text:    "Open https://shop.example/verify?t=abc",
	HTML:    `<a href="https://shop.example/verify?t=abc">Verify</a>`,
}

func TestSenderMapsFields(t *testing.T) {
	t.Parallel()
	sink, url := newSink(t, nil)
	id := uuid.Must(uuid.NewV7())
	if err := newSender(t, url, nil).Send(context.Background(), id, welcome); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := sink.Messages(mailsink.Filter{})
	if len(got) != 1 {
		t.Fatalf("got %d messages in the sink, want 1", len(got))
	}
	want := mailsink.Message{
		From:     &mailsink.Address{Email: "shop@example.com", Name: "Shop"},
		To:       []mailsink.Address{{Email: "ann@example.com", Name: "Ann Smith"}, {Email: "bob@example.com"}},
		Subject:  welcome.Subject,
		TextPart: welcome.Text,
		HTMLPart: welcome.HTML,
		CustomID: id.String(),
		Headers:  map[string]string{mail.MessageIDHeader: id.String()},
	}
	if diff := cmp.Diff(want, got[0].Message); diff != "" {
		t.Errorf("message as Mailjet received it (-want +got):\n%s", diff)
	}
}

// hangingServer accepts connections and never answers, as an overloaded
// provider or a black-holed route does.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// Whether a failure is worth a retry decides whether an email is delayed or
// lost: classify by what Mailjet (or the network) answered.
func TestSenderClassifiesFailures(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	proxy502 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}))
	t.Cleanup(proxy502.Close)

	tests := []struct {
		name string
		// failStatus makes the sink fail the send; baseURL replaces the
		// sink; sinkEnv configures it.
		failStatus    int
		baseURL       string
		sinkEnv       map[string]string
		msg           mail.Message
		wantPermanent bool
		// wantStatus is Mailjet's answer, 0 when there was none.
		wantStatus  int
		wantInError string
	}{
		{name: "server error", failStatus: 500, wantStatus: 500, wantInError: "500"},
		{name: "unavailable", failStatus: 503, wantStatus: 503, wantInError: "503"},
		{name: "too many requests", failStatus: 429, wantStatus: 429, wantInError: "429"},
		{name: "account suspended", failStatus: 401, wantStatus: 401, wantInError: "401"},
		{name: "keys refused", sinkEnv: map[string]string{"MAILSINK_API_KEY_PUBLIC": "other", "MAILSINK_API_KEY_PRIVATE": "keys"}, wantStatus: 401, wantInError: "mj-0015"},
		{name: "sender not authorised", failStatus: 403, wantStatus: 403, wantInError: "403"},
		{name: "request refused", failStatus: 400, wantStatus: 400, wantPermanent: true, wantInError: "injected failure"},
		{name: "address refused", msg: mail.Message{To: []mail.Address{{Email: "ann@localhost"}}, Subject: "s", Text: "t"}, wantStatus: 400, wantPermanent: true, wantInError: "mj-0013"},
		{name: "payload too large", failStatus: 413, wantStatus: 413, wantPermanent: true, wantInError: "413"},
		{name: "connection refused", baseURL: closedURL, wantInError: "answered nothing"},
		{name: "no answer in time", baseURL: "hang", wantInError: "deadline exceeded"},
		{name: "proxy's HTML 502", baseURL: proxy502.URL, wantStatus: 502, wantInError: "502 Bad Gateway"},
		{name: "invalid message", msg: mail.Message{To: []mail.Address{{Email: "not an address"}}, Subject: "s", Text: "t"}, wantPermanent: true, wantInError: "not an email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink, url := newSink(t, tt.sinkEnv)
			if tt.failStatus != 0 {
				if err := sink.FailNext(1, tt.failStatus); err != nil {
					t.Fatal(err)
				}
			}
			switch tt.baseURL {
			case "":
			case "hang":
				url = hangingServer(t)
			default:
				url = tt.baseURL
			}
			msg := tt.msg
			if msg.To == nil {
				msg = welcome
			}
			start := time.Now()
			err := newSender(t, url, map[string]string{"MAIL_SEND_TIMEOUT": "300ms"}).Send(context.Background(), uuid.New(), msg)
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			t.Logf("error: %v", err)
			if got := outbox.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("got permanent %v, want %v (error %v)", got, tt.wantPermanent, err)
			}
			var apiErr *mail.APIError
			gotStatus := 0
			if errors.As(err, &apiErr) {
				gotStatus = apiErr.Status
			}
			if gotStatus != tt.wantStatus {
				t.Errorf("got Mailjet status %d, want %d", gotStatus, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("got error %q, want it to mention %q", err, tt.wantInError)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v, want the send bounded by MAIL_SEND_TIMEOUT", d)
			}
			if n := len(sink.Messages(mailsink.Filter{})); n != 0 {
				t.Errorf("got %d messages in the sink, want 0", n)
			}
		})
	}
}

func TestEnqueueValidatesAndStores(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, outbox.Migrations)
	ctx := context.Background()
	tests := []struct {
		name       string
		msg        mail.Message
		wantFields []string
	}{
		{"valid", welcome, nil},
		{"text only", mail.Message{To: []mail.Address{{Email: "a@example.com"}}, Subject: "s", Text: "t"}, nil},
		{"nothing", mail.Message{}, []string{"to", "subject", "text"}},
		{"display name in the address", mail.Message{To: []mail.Address{{Email: "Ann <a@example.com>"}}, Subject: "s", Text: "t"}, []string{"to[0].email"}},
		{"blank subject", mail.Message{To: []mail.Address{{Email: "a@example.com"}}, Subject: "  ", HTML: "<p>h</p>"}, []string{"subject"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id uuid.UUID
			err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
				var err error
				id, err = mail.Enqueue(ctx, tx, tt.msg)
				return err
			})
			if tt.wantFields != nil {
				e, ok := apierr.As(err)
				if !ok || e.Kind != apierr.Invalid {
					t.Fatalf("got %v, want an invalid-request error", err)
				}
				var got []string
				for _, f := range e.Fields {
					got = append(got, f.Field)
				}
				if diff := cmp.Diff(tt.wantFields, got); diff != "" {
					t.Errorf("fields at fault (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			var topic string
			var payload []byte
			if err := pool.QueryRow(ctx, `SELECT topic, payload FROM outbox_messages WHERE id = $1`, id).Scan(&topic, &payload); err != nil {
				t.Fatal(err)
			}
			var stored mail.Message
			if err := json.Unmarshal(payload, &stored); err != nil {
				t.Fatal(err)
			}
			if topic != mail.Topic {
				t.Errorf("got topic %q, want %q", topic, mail.Topic)
			}
			if diff := cmp.Diff(tt.msg, stored); diff != "" {
				t.Errorf("stored payload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	sink, url := newSink(t, nil)
	h := mail.Handler(newSender(t, url, nil))
	id := uuid.Must(uuid.NewV7())
	payload, err := json.Marshal(welcome)
	if err != nil {
		t.Fatal(err)
	}
	if err := h(context.Background(), outbox.Delivery{Message: outbox.Message{ID: id, Topic: mail.Topic, Payload: payload}, Attempt: 1}); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if got := sink.Messages(mailsink.Filter{CustomID: id.String()}); len(got) != 1 {
		t.Errorf("got %d messages with CustomID %s, want 1", len(got), id)
	}
	err = h(context.Background(), outbox.Delivery{Message: outbox.Message{ID: uuid.New(), Topic: mail.Topic, Payload: []byte(`{"to":"ann@example.com"}`)}, Attempt: 1})
	if !outbox.IsPermanent(err) {
		t.Errorf("undecodable payload: got %v, want a permanent error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	required := map[string]string{
		"MAILJET_API_KEY_PUBLIC": "k", "MAILJET_API_KEY_PRIVATE": "s", "MAIL_FROM_EMAIL": "shop@example.com",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for rk, rv := range required {
			if _, ok := m[rk]; !ok {
				m[rk] = rv
			}
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"defaults", required, false},
		{"sink URL with a slash", with("MAILJET_BASE_URL", "http://mailsink.service.consul:8025/"), false},
		{"no keys", map[string]string{"MAIL_FROM_EMAIL": "shop@example.com"}, true},
		{"versioned base URL", with("MAILJET_BASE_URL", "https://api.mailjet.com/v3"), true},
		{"not a URL", with("MAILJET_BASE_URL", "api.mailjet.com"), true},
		{"sender with a name", with("MAIL_FROM_EMAIL", "Shop <shop@example.com>"), true},
		{"no timeout", with("MAIL_SEND_TIMEOUT", "0s"), true},
	}
	for _, tt := range tests {
		var cfg mail.Config
		err := config.Load(&cfg, config.MapLookup(tt.env))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
