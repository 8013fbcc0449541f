package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/auth/migrations"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// The bootstrap admin every test service starts with.
const (
	adminEmail    = "admin@mylittleshopping.dev"
	adminPassword = "admin-password-1"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// service is one auth service run in-process through run, as main runs it,
// on a fresh database, with the mail sink standing in for Mailjet.
type service struct {
	*servicetest.Service
	mail servicetest.Mail // its HTTP control API too
}

// withEnv sets a variable of the service's environment before it starts.
var withEnv = servicetest.WithEnv

// startService runs the service until the test ends, and waits until it is
// ready.
func startService(t *testing.T, opts ...servicetest.Option) *service {
	t.Helper()
	mail := servicetest.StartMail(t, mailsink.Config{MaxMessages: 1000, MaxBodyBytes: 1 << 20})
	addr := servicetest.Addr(t)
	base := "http://" + addr
	env := servicetest.Merge(mail.Env("noreply@mylittleshopping.dev"), map[string]string{
		"HTTP_ADDR":                     addr,
		"AUTH_VERIFY_URL":               base + "/v1/verify-email",
		"AUTH_RESET_URL":                base + "/reset-password",
		"AUTH_JWKS_URL":                 base + "/.well-known/jwks.json",
		"AUTH_BOOTSTRAP_ADMIN_EMAIL":    adminEmail,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": adminPassword,
	})
	for _, o := range opts {
		o(env)
	}
	svc := servicetest.Start(t, servicetest.Config{Name: "auth", Run: run, Env: env}, migrations.Set, outbox.Migrations)
	return &service{Service: svc, mail: mail}
}

// response is an answer of the service.
type response = servicetest.Response

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
	req := servicetest.Request{Token: token, Body: body}
	if client != "" {
		req.Header = map[string]string{"X-Client-Address": client}
	}
	return s.Do(t, method, path, req)
}

// withoutInstance is a problem body with its instance (the request id, which
// differs on every request) blanked, for comparing two answers.
func withoutInstance(t *testing.T, r response) string {
	t.Helper()
	p := r.Problem(t)
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
	}).Want(t, http.StatusAccepted)
}

func (s *service) login(t *testing.T, email, password string) tokenPair {
	t.Helper()
	var tp tokenPair
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": email, "password": password}).Want(t, http.StatusOK).Decode(t, &tp)
	return tp
}

func (s *service) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return s.do(t, "POST", "/v1/token/refresh", "", map[string]string{"refresh_token": refreshToken})
}

func (s *service) me(t *testing.T, accessToken string) account {
	t.Helper()
	var a account
	s.do(t, "GET", "/v1/accounts/me", accessToken, nil).Want(t, http.StatusOK).Decode(t, &a)
	return a
}

// user signs up, verifies by the emailed link, and logs in.
func (s *service) user(t *testing.T, email, password, role string) (account, tokenPair) {
	t.Helper()
	const subject = "Confirm your email address"
	before := len(s.emails(t, email, subject, 0))
	s.signup(t, email, password, role)
	msgs := s.emails(t, email, subject, before+1)
	s.follow(t, linkRE.FindString(msgs[len(msgs)-1].Message.TextPart)).Want(t, http.StatusOK)
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
		for _, m := range s.mail.Sink.Messages(mailsink.Filter{To: to}) {
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
