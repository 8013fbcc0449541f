package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/auth/migrations"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
	"github.com/mylittleshopping/shop/services/platform/porttest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The bootstrap admin every test service starts with.
const (
	adminEmail    = "admin@mylittleshopping.dev"
	adminPassword = "admin-password-1"
)

// service is one auth service run in-process through run, as main runs it,
// on a fresh database, with the mail sink standing in for Mailjet.
type service struct {
	url   string // http://127.0.0.1:port
	dbURL string
	db    *pgxpool.Pool // the service's database, for the checks a client cannot make
	sink  *mailsink.Sink
	// sinkURL is the sink's address, for its HTTP control API.
	sinkURL string
	logs    *syncBuffer // every JSON line the service logged
	env     map[string]string
	stopFn  func() error
}

// option adjusts a service's environment before it starts.
type option func(env map[string]string)

func withEnv(k, v string) option { return func(env map[string]string) { env[k] = v } }

// startService runs the service until the test ends, and waits until it is
// ready.
func startService(t *testing.T, opts ...option) *service {
	t.Helper()
	sink, err := mailsink.New(mailsink.Config{MaxMessages: 1000, MaxBodyBytes: 1 << 20}, logging.ForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := map[string]string{
		"HTTP_ADDR":                     fmt.Sprintf("127.0.0.1:%d", port),
		"HTTP_SHUTDOWN_TIMEOUT":         "5s",
		"MAILJET_API_KEY_PUBLIC":        "test-public",
		"MAILJET_API_KEY_PRIVATE":       "test-private",
		"MAILJET_BASE_URL":              sinkSrv.URL,
		"MAIL_FROM_EMAIL":               "noreply@mylittleshopping.dev",
		"AUTH_VERIFY_URL":               base + "/v1/verify-email",
		"AUTH_RESET_URL":                base + "/reset-password",
		"AUTH_JWKS_URL":                 base + "/.well-known/jwks.json",
		"AUTH_BOOTSTRAP_ADMIN_EMAIL":    adminEmail,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": adminPassword,
		"OUTBOX_POLL_INTERVAL":          "50ms",
		"OUTBOX_BACKOFF_BASE":           "50ms",
		"OUTBOX_BACKOFF_MAX":            "200ms",
	}
	for _, o := range opts {
		o(env)
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = pgtest.URL(t, migrations.Set, outbox.Migrations)
	}
	s := &service{url: base, dbURL: env["DATABASE_URL"], sink: sink, sinkURL: sinkSrv.URL, logs: &syncBuffer{}, env: env}
	s.db, err = pgxpool.New(context.Background(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Close)
	s.run(t)
	return s
}

// run starts the service on s's environment and stops it when the test
// ends.
func (s *service) run(t *testing.T) {
	t.Helper()
	log := logging.New("auth", io.MultiWriter(s.logs, testLog{t}), "trace")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, log, config.MapLookup(s.env)) }()
	stop := func() error {
		cancel()
		return <-done
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.url + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("service stopped while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready after 15s: %v", stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stopFn = stop
	t.Cleanup(func() {
		if s.stopFn != nil {
			if err := s.stop(); err != nil {
				t.Errorf("run returned %v, want nil after a graceful stop", err)
			}
		}
	})
}

// stop stops the service and returns what run returned.
func (s *service) stop() error {
	stop := s.stopFn
	s.stopFn = nil
	return stop()
}

// freePort is a port for a server the test starts next (porttest: never
// one the kernel may give a parallel test's client or httptest server).
func freePort(t *testing.T) int {
	t.Helper()
	return porttest.Free(t)
}

// syncBuffer is a bytes.Buffer that many goroutines may log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLog shows the service's log lines with the test's output when it
// fails or runs with -v.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// response is an answer of the service.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with an optional bearer token and JSON body (a string
// is sent as it is; anything else is marshalled).
func (s *service) do(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return s.doFrom(t, "", method, path, token, body)
}

// doFrom is do on behalf of a client: client, when not "", is sent as
// X-Client-Address, as the aggregator does.
func (s *service) doFrom(t *testing.T, client, method, path, token string, body any) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = s.url + path
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client != "" {
		req.Header.Set("X-Client-Address", client)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// want fails the test unless the response has the status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// decode unmarshals the body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem checks that the response is problem+json and returns it.
func (r response) problem(t *testing.T) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Fatalf("got Content-Type %q, want %q; body: %s", ct, httpx.ProblemContentType, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	var p httpx.Problem
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, r.body)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Instance == "" {
		t.Fatalf("incomplete problem %+v for status %d", p, r.status)
	}
	return p
}

// withoutInstance is a problem body with its instance (the request id, which
// differs on every request) blanked, for comparing two answers.
func (r response) withoutInstance(t *testing.T) string {
	t.Helper()
	p := r.problem(t)
	p.Instance = ""
	raw, _ := json.Marshal(p)
	return string(raw)
}

// tokenPair is the body of login and refresh.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// account is the body of the account endpoints.
type account struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	DisplayName string     `json:"display_name"`
	Role        string     `json:"role"`
	VerifiedAt  *time.Time `json:"verified_at"`
	DisabledAt  *time.Time `json:"disabled_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func (s *service) signup(t *testing.T, email, password, role string) {
	t.Helper()
	s.do(t, "POST", "/v1/signup", "", map[string]string{
		"email": email, "password": password, "display_name": "User " + email, "role": role,
	}).want(t, http.StatusAccepted)
}

func (s *service) login(t *testing.T, email, password string) tokenPair {
	t.Helper()
	var tp tokenPair
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": email, "password": password}).want(t, http.StatusOK).decode(t, &tp)
	return tp
}

func (s *service) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return s.do(t, "POST", "/v1/token/refresh", "", map[string]string{"refresh_token": refreshToken})
}

func (s *service) me(t *testing.T, accessToken string) account {
	t.Helper()
	var a account
	s.do(t, "GET", "/v1/accounts/me", accessToken, nil).want(t, http.StatusOK).decode(t, &a)
	return a
}

// user signs up, verifies by the emailed link, and logs in.
func (s *service) user(t *testing.T, email, password, role string) (account, tokenPair) {
	t.Helper()
	const subject = "Confirm your email address"
	before := len(s.emails(t, email, subject, 0))
	s.signup(t, email, password, role)
	msgs := s.emails(t, email, subject, before+1)
	s.follow(t, linkRE.FindString(msgs[len(msgs)-1].Message.TextPart)).want(t, http.StatusOK)
	tp := s.login(t, email, password)
	return s.me(t, tp.AccessToken), tp
}

// emails waits until the sink holds n emails to address whose subject is
// subject, and returns them.
func (s *service) emails(t *testing.T, to, subject string, n int) []mailsink.StoredMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []mailsink.StoredMessage
		for _, m := range s.sink.Messages(mailsink.Filter{To: to}) {
			if m.Message.Subject == subject {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d emails %q to %s after 10s, want %d", len(got), subject, to, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linkRE finds an emailed link: the token is in its fragment, which no
// browser sends to a server.
var linkRE = regexp.MustCompile(`https?://\S+#token=[A-Za-z0-9_-]+`)

// follow does what the verification page does for a person who clicks
// its button: it posts the link's token to POST /v1/verify-email.
func (s *service) follow(t *testing.T, link string) response {
	t.Helper()
	return s.do(t, "POST", "/v1/verify-email", "", map[string]string{"token": tokenOf(t, link)})
}

// emailLink waits for the one email to address with subject and returns the
// link in it.
func (s *service) emailLink(t *testing.T, to, subject string) string {
	t.Helper()
	msgs := s.emails(t, to, subject, 1)
	link := linkRE.FindString(msgs[len(msgs)-1].Message.TextPart)
	if link == "" {
		t.Fatalf("no link in email %q:\n%s", subject, msgs[len(msgs)-1].Message.TextPart)
	}
	return link
}

// tokenOf is the token of an emailed link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	_, token, ok := strings.Cut(link, "#token=")
	if !ok {
		t.Fatalf("link %q has no token", link)
	}
	return token
}
