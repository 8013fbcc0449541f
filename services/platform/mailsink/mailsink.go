// Package mailsink is a Mailjet-compatible capture server for the dev
// cluster and for tests: it answers POST /v3.1/send as Mailjet's Send API
// v3.1 does (basic authentication, Mailjet's validation, response and error
// shapes), keeps the accepted messages in memory instead of delivering them,
// lists them over HTTP so that a journey can read a verification link, and
// fails on demand so that retries can be exercised.
//
// It is the one fake of the system: it stands for Mailjet, outside our
// infrastructure, and speaks Mailjet's wire protocol, so the code under test
// is the production client (github.com/mailjet/mailjet-apiv3-go/v4) pointed
// at another base URL.
package mailsink

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Config is the sink's part of its process's configuration.
type Config struct {
	// APIKeyPublic and APIKeyPrivate, when set, are the only credentials
	// accepted. When empty, any basic-auth credentials are, so services keep
	// whatever keys they were given; requests without any are refused as
	// Mailjet refuses them.
	APIKeyPublic  string `env:"MAILSINK_API_KEY_PUBLIC"`
	APIKeyPrivate string `env:"MAILSINK_API_KEY_PRIVATE" secret:"true"`
	// MaxMessages bounds memory: beyond it the oldest messages are dropped.
	MaxMessages int `env:"MAILSINK_MAX_MESSAGES" default:"10000"`
	// MaxBodyBytes is the largest send request accepted; Mailjet's limit is
	// 15 MB.
	MaxBodyBytes int64 `env:"MAILSINK_MAX_BODY_BYTES" default:"15728640"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if (c.APIKeyPublic == "") != (c.APIKeyPrivate == "") {
		errs = append(errs, errors.New("MAILSINK_API_KEY_PUBLIC and MAILSINK_API_KEY_PRIVATE go together: set both or neither"))
	}
	if c.MaxMessages < 1 {
		errs = append(errs, errors.New("MAILSINK_MAX_MESSAGES must be at least 1"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("MAILSINK_MAX_BODY_BYTES must be at least 1024"))
	}
	return errors.Join(errs...)
}

// StoredMessage is a message the sink accepted. Message and Recipients are
// in Mailjet's shape; the rest is the sink's.
type StoredMessage struct {
	// Seq numbers the messages in the order received, from 1, and is never
	// reused (not even after a clear), so a reader can ask for what came
	// after the last one it saw.
	Seq        int64     `json:"seq"`
	ReceivedAt time.Time `json:"received_at"`
	// Recipients are the ids the send's answer gave each recipient (To, Cc
	// then Bcc).
	Recipients []SentRecipient `json:"recipients"`
	Message    Message         `json:"message"`
}

// Filter selects stored messages; zero fields select everything.
type Filter struct {
	// To matches any recipient address (To, Cc or Bcc), ignoring case, as a
	// mailbox would.
	To       string
	CustomID string
	// After keeps the messages whose Seq is greater.
	After int64
}

func (f Filter) match(m *StoredMessage) bool {
	if f.CustomID != "" && m.Message.CustomID != f.CustomID {
		return false
	}
	if m.Seq <= f.After {
		return false
	}
	if f.To == "" {
		return true
	}
	for _, a := range slices.Concat(m.Message.To, m.Message.Cc, m.Message.Bcc) {
		if strings.EqualFold(a.Email, f.To) {
			return true
		}
	}
	return false
}

// Sink is the capture server, an http.Handler.
type Sink struct {
	cfg    Config
	log    hclog.Logger
	router *mux.Router

	mu         sync.Mutex
	messages   []StoredMessage
	seq        int64
	messageID  int64
	failCount  int
	failStatus int
}

// firstMessageID makes the ids look like Mailjet's (large, 64-bit) so that a
// client storing them in a 32-bit field fails here rather than in production.
const firstMessageID = 1 << 58

// New returns a sink with no messages.
func New(cfg Config, log hclog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mailsink: %w", err)
	}
	s := &Sink{cfg: cfg, log: log.Named("mailsink"), messageID: firstMessageID}
	r := httpx.NewRouter()
	r.Handle("/v3.1/send", http.HandlerFunc(s.send)).Methods(http.MethodPost)
	r.Handle("/messages", httpx.Handle(s.list)).Methods(http.MethodGet)
	r.Handle("/messages", httpx.Handle(s.clear)).Methods(http.MethodDelete)
	r.Handle("/control/fail", httpx.Handle(s.fail)).Methods(http.MethodPost)
	s.router = r
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Messages returns the stored messages f selects, oldest first.
func (s *Sink) Messages(f Filter) []StoredMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []StoredMessage{}
	for i := range s.messages {
		if f.match(&s.messages[i]) {
			out = append(out, s.messages[i])
		}
	}
	return out
}

// Clear forgets every stored message; sequence numbers continue.
func (s *Sink) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
}

// FailNext makes the next n authenticated sends fail with status, in
// Mailjet's error shape, storing nothing. n = 0 cancels a pending failure.
func (s *Sink) FailNext(n, status int) error {
	if n < 0 || n > 1_000_000 {
		return apierr.InvalidFields(apierr.FieldError{Field: "count", Detail: "must be between 0 and 1000000"})
	}
	if status < 400 || status > 599 {
		return apierr.InvalidFields(apierr.FieldError{Field: "status", Detail: "must be an HTTP error status (400 to 599)"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCount, s.failStatus = n, status
	return nil
}

// takeFailure consumes one injected failure, if any is pending.
func (s *Sink) takeFailure() (status int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCount == 0 {
		return 0, false
	}
	s.failCount--
	return s.failStatus, true
}

// authenticate checks HTTP basic authentication as Mailjet requires it.
func (s *Sink) authenticate(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" || pass == "" {
		return false
	}
	if s.cfg.APIKeyPublic == "" {
		return true
	}
	okUser := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.APIKeyPublic)) == 1
	okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.APIKeyPrivate)) == 1
	return okUser && okPass
}

// send is POST /v3.1/send. Its errors are Mailjet's, not problem+json: the
// client under test is Mailjet's.
func (s *Sink) send(w http.ResponseWriter, r *http.Request) {
	if !s.authenticate(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mailsink"`)
		writeMailjet(w, http.StatusUnauthorized, newError(http.StatusUnauthorized, codeAuth,
			"API key authentication/authorization failure. You may be unauthorized to access the API or your API key may be expired. Visit API keys management section to check your keys."))
		return
	}
	if status, ok := s.takeFailure(); ok {
		s.log.Debug("failing send on request", "status", status)
		e := newError(status, "", "mailsink: injected failure (POST /control/fail)")
		writeMailjet(w, status, e)
		return
	}
	var req SendRequest
	if err := httpx.DecodeJSONLimit(w, r, &req, s.cfg.MaxBodyBytes); err != nil {
		writeMailjet(w, http.StatusBadRequest, decodeError(err))
		return
	}
	switch {
	case req.Messages == nil:
		writeMailjet(w, http.StatusBadRequest, invalid(codeMissing, "The Messages is mandatory but missing from the input", "Messages"))
		return
	case len(req.Messages) == 0:
		writeMailjet(w, http.StatusBadRequest, invalid(codeEmptyArray, "The Messages array must contain at least one message", "Messages"))
		return
	case len(req.Messages) > maxMessages:
		writeMailjet(w, http.StatusBadRequest, invalid(codeTooManyItems, fmt.Sprintf("The Messages array has %d items; at most %d are allowed", len(req.Messages), maxMessages), "Messages"))
		return
	}
	// Like Mailjet, each message is processed on its own: the valid ones of
	// a batch are accepted even when others are refused, and the answer is
	// 400 as soon as one is.
	resp := SendResponse{Messages: make([]MessageResult, len(req.Messages))}
	status := http.StatusOK
	href := baseURL(r) + "/v3/REST/message/"
	for i, m := range req.Messages {
		if errs := validate(m); len(errs) > 0 {
			resp.Messages[i] = MessageResult{Status: statusError, Errors: errs}
			status = http.StatusBadRequest
			continue
		}
		resp.Messages[i] = s.accept(m, req.SandboxMode, href)
	}
	writeMailjet(w, status, resp)
}

// accept gives an accepted message its ids and stores it, unless in sandbox
// mode, where Mailjet validates but neither sends nor assigns ids.
func (s *Sink) accept(m Message, sandbox bool, href string) MessageResult {
	res := MessageResult{Status: statusSuccess, CustomID: m.CustomID}
	if sandbox {
		for _, list := range []struct {
			in  []Address
			out *[]SentRecipient
		}{{m.To, &res.To}, {m.Cc, &res.Cc}, {m.Bcc, &res.Bcc}} {
			for _, a := range list.in {
				*list.out = append(*list.out, SentRecipient{Email: a.Email, MessageHref: href + "0"})
			}
		}
		return res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := StoredMessage{ReceivedAt: time.Now().UTC(), Message: m}
	for _, list := range []struct {
		in  []Address
		out *[]SentRecipient
	}{{m.To, &res.To}, {m.Cc, &res.Cc}, {m.Bcc, &res.Bcc}} {
		for _, a := range list.in {
			s.messageID++
			sr := SentRecipient{
				Email:       a.Email,
				MessageUUID: uuid.NewString(),
				MessageID:   s.messageID,
				MessageHref: href + strconv.FormatInt(s.messageID, 10),
			}
			*list.out = append(*list.out, sr)
			stored.Recipients = append(stored.Recipients, sr)
		}
	}
	s.seq++
	stored.Seq = s.seq
	if len(s.messages) >= s.cfg.MaxMessages {
		s.messages = slices.Delete(s.messages, 0, len(s.messages)-s.cfg.MaxMessages+1)
	}
	s.messages = append(s.messages, stored)
	s.log.Debug("message accepted", "seq", stored.Seq, "custom_id", m.CustomID, "subject", m.Subject)
	return res
}

// baseURL is where the request was addressed, for the MessageHref links
// (informational: the sink does not serve Mailjet's message resource).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// decodeError turns httpx's decoding error into Mailjet's global error:
// mj-0011 for a body over the limit, mj-0002 for anything unreadable.
func decodeError(err error) Error {
	e, _ := apierr.As(err)
	if e != nil && e.Kind == apierr.TooLarge {
		return invalid(codeTooLarge, "The payload size is over the limit: "+err.Error())
	}
	var related []string
	if e != nil {
		for _, f := range e.Fields {
			related = append(related, f.Field)
		}
	}
	return invalid(codeMalformed, "Malformed JSON, please review the syntax and properties types: "+err.Error(), related...)
}

// writeMailjet writes a Mailjet answer: JSON, as Mailjet sends it.
func writeMailjet(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// list is GET /messages.
func (s *Sink) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, s.Messages(f))
}

// parseFilter reads GET /messages's query, refusing unknown parameters so a
// misspelt filter does not silently match everything.
func parseFilter(r *http.Request) (Filter, error) {
	var f Filter
	var fields []apierr.FieldError
	for name, values := range r.URL.Query() {
		if len(values) != 1 {
			fields = append(fields, apierr.FieldError{Field: name, Detail: "must be given once"})
			continue
		}
		v := values[0]
		switch name {
		case "to":
			f.To = v
		case "custom_id":
			f.CustomID = v
		case "after":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				fields = append(fields, apierr.FieldError{Field: name, Detail: "must be a non-negative integer (a seq)"})
			}
			f.After = n
		default:
			fields = append(fields, apierr.FieldError{Field: name, Detail: "unknown parameter; use to, custom_id or after"})
		}
	}
	if len(fields) > 0 {
		slices.SortFunc(fields, func(a, b apierr.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return Filter{}, apierr.InvalidFields(fields...)
	}
	return f, nil
}

// clear is DELETE /messages.
func (s *Sink) clear(w http.ResponseWriter, r *http.Request) error {
	s.Clear()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// FailRequest is the body of POST /control/fail.
type FailRequest struct {
	// Count is how many of the next sends fail; 0 cancels.
	Count *int `json:"count"`
	// Status is their HTTP status; 500 when omitted.
	Status int `json:"status,omitempty"`
}

// fail is POST /control/fail.
func (s *Sink) fail(w http.ResponseWriter, r *http.Request) error {
	var req FailRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Count == nil {
		return apierr.InvalidFields(apierr.FieldError{Field: "count", Detail: "is required"})
	}
	if req.Status == 0 {
		req.Status = http.StatusInternalServerError
	}
	if err := s.FailNext(*req.Count, req.Status); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
