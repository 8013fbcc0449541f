package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	mailjet "github.com/mailjet/mailjet-apiv3-go/v4"

	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/outbox"
)

// MessageIDHeader carries the outbox message id in the email itself, next to
// Mailjet's CustomID, so a duplicate is recognisable in the inbox too.
const MessageIDHeader = "X-Outbox-Message-ID"

// Config is the email part of a service's configuration.
type Config struct {
	APIKeyPublic  string `env:"MAILJET_API_KEY_PUBLIC" required:"true"`
	APIKeyPrivate string `env:"MAILJET_API_KEY_PRIVATE" required:"true" secret:"true"`
	// BaseURL is the API's root, without a version; the mail sink's address
	// in the dev cluster and in tests.
	BaseURL   string `env:"MAILJET_BASE_URL" default:"https://api.mailjet.com"`
	FromEmail string `env:"MAIL_FROM_EMAIL" required:"true"`
	FromName  string `env:"MAIL_FROM_NAME" default:"Mylittleshopping"`
	// Timeout bounds one call to the Send API; keep it under the relay's
	// OUTBOX_HANDLER_TIMEOUT.
	Timeout time.Duration `env:"MAIL_SEND_TIMEOUT" default:"10s"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("MAILJET_BASE_URL %q must be an http(s) URL", c.BaseURL))
	case strings.Trim(u.Path, "/") != "":
		// The client appends the version itself; ".../v3" would become
		// ".../v3/v3.1/send" and every send a 404.
		errs = append(errs, fmt.Errorf("MAILJET_BASE_URL %q must be the API root, without a path such as /v3", c.BaseURL))
	}
	if !validEmail(c.FromEmail) {
		errs = append(errs, fmt.Errorf("MAIL_FROM_EMAIL %q is not an email address", c.FromEmail))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("MAIL_SEND_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// Sender sends emails with Mailjet's Send API v3.1.
type Sender struct {
	client  *mailjet.Client
	from    Address
	timeout time.Duration
}

// NewSender returns a sender for cfg.
//
// Calls go through transport: nil is a clone of http.DefaultTransport; in
// the cluster, the mesh's (the mail sink is a service of the mesh, and
// Mailjet's own address passes through it untouched).
func NewSender(cfg Config, transport http.RoundTripper) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	// The client's base URL includes the major version: it appends ".1/send".
	client := mailjet.NewMailjetClient(cfg.APIKeyPublic, cfg.APIKeyPrivate, strings.TrimRight(cfg.BaseURL, "/")+"/v3")
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	// The send carries the id of the request that queued the mail (the
	// relay puts it in the context), so the receiver's log names it too.
	client.SetClient(&http.Client{Transport: responseRecorder{base: httpx.PropagateRequestID{Base: transport}}})
	return &Sender{
		client:  client,
		from:    Address{Email: cfg.FromEmail, Name: cfg.FromName},
		timeout: cfg.Timeout,
	}, nil
}

// Send sends m once, with id as Mailjet's CustomID and in MessageIDHeader.
// Its error is wrapped by outbox.Permanent when Mailjet refused the message
// itself (400, or 413 for its size: the same request would get the same
// answer);
// anything else — no answer, a timeout, 429, 5xx, and 401/403, which an
// operator fixes in the account without touching the message — is worth
// retrying.
func (s *Sender) Send(ctx context.Context, id uuid.UUID, m Message) error {
	if err := m.Validate(); err != nil {
		return outbox.Permanent(fmt.Errorf("send %s: %w", id, err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var answer response
	ctx = context.WithValue(ctx, responseKey{}, &answer)

	to := make(mailjet.RecipientsV31, len(m.To))
	for i, a := range m.To {
		to[i] = mailjet.RecipientV31{Email: a.Email, Name: a.Name}
	}
	req := &mailjet.MessagesV31{Info: []mailjet.InfoMessagesV31{{
		From:     &mailjet.RecipientV31{Email: s.from.Email, Name: s.from.Name},
		To:       &to,
		Subject:  m.Subject,
		TextPart: m.Text,
		HTMLPart: m.HTML,
		CustomID: id.String(),
		Headers:  map[string]any{MessageIDHeader: id.String()},
	}}}
	res, err := s.client.SendMailV31(req, mailjet.WithContext(ctx))
	switch {
	case err != nil && answer.status >= 300:
		apiErr := &APIError{Status: answer.status, Body: answer.body, Err: err}
		if apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusRequestEntityTooLarge {
			return outbox.Permanent(fmt.Errorf("send %s: %w", id, apiErr))
		}
		return fmt.Errorf("send %s: %w", id, apiErr)
	case err != nil && answer.status == 0:
		return fmt.Errorf("send %s: mailjet answered nothing: %w", id, err)
	case err != nil:
		return fmt.Errorf("send %s: mailjet answered %d: %w", id, answer.status, err)
	}
	if len(res.ResultsV31) != 1 || res.ResultsV31[0].Status != "success" {
		return fmt.Errorf("send %s: mailjet answered %d without a success: %+v", id, answer.status, res.ResultsV31)
	}
	return nil
}

// APIError is Mailjet's refusal of a send: its HTTP status and (the start
// of) its body, which says why in Mailjet's words (ErrorCode, ErrorMessage,
// ErrorRelatedTo). Err is the Mailjet client's reading of it.
type APIError struct {
	Status int
	Body   string
	Err    error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("mailjet answered %d: %s", e.Status, e.Body)
}

func (e *APIError) Unwrap() error { return e.Err }

// maxErrorBody is how much of an error answer is kept: Mailjet's are a few
// hundred bytes; a proxy's HTML page is cut.
const maxErrorBody = 1024

// response is where responseRecorder writes what Mailjet answered to one
// send, found through the send's context. The Mailjet client keeps the
// status to itself and guesses an error body's shape from it: a global 400
// reaches us empty, a proxy's HTML 502 as a JSON syntax error. Classifying by
// the real status, and quoting the real body, is what makes the
// retry-or-give-up decision and last_error reliable.
type response struct {
	status int
	body   string
}

type responseKey struct{}

// responseRecorder is the Mailjet client's transport.
type responseRecorder struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t responseRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	p, ok := req.Context().Value(responseKey{}).(*response)
	if resp == nil || !ok {
		return resp, err
	}
	p.status = resp.StatusCode
	if resp.StatusCode >= 300 {
		// Error bodies are small; read one whole and hand the client a copy.
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if rerr != nil {
			return nil, rerr
		}
		b = bytes.TrimSpace(b)
		if len(b) > maxErrorBody {
			b = append(b[:maxErrorBody:maxErrorBody], "…"...)
		}
		p.body = strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return resp, err
}
