package mailsink

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"

	"github.com/google/uuid"
)

// The types below are Mailjet's Send API v3.1 wire format, field for field,
// as documented at https://dev.mailjet.com/email/reference/send-emails/ and
// as github.com/mailjet/mailjet-apiv3-go/v4 sends it.

// Address is a sender or a recipient.
type Address struct {
	Email string `json:"Email"`
	Name  string `json:"Name,omitempty"`
}

// Attachment is a file attached to, or inlined in, a message.
type Attachment struct {
	ContentType   string `json:"ContentType"`
	Filename      string `json:"Filename"`
	Base64Content string `json:"Base64Content"`
	// ContentID names an inlined attachment for cid: references.
	ContentID string `json:"ContentID,omitempty"`
}

// Message is one message of a send request.
type Message struct {
	From                     *Address          `json:"From,omitempty"`
	Sender                   *Address          `json:"Sender,omitempty"`
	ReplyTo                  *Address          `json:"ReplyTo,omitempty"`
	To                       []Address         `json:"To,omitempty"`
	Cc                       []Address         `json:"Cc,omitempty"`
	Bcc                      []Address         `json:"Bcc,omitempty"`
	Subject                  string            `json:"Subject,omitempty"`
	TextPart                 string            `json:"TextPart,omitempty"`
	HTMLPart                 string            `json:"HTMLPart,omitempty"`
	TemplateID               int64             `json:"TemplateID,omitempty"`
	TemplateLanguage         bool              `json:"TemplateLanguage,omitempty"`
	TemplateErrorReporting   *Address          `json:"TemplateErrorReporting,omitempty"`
	TemplateErrorDeliver     bool              `json:"TemplateErrorDeliver,omitempty"`
	Attachments              []Attachment      `json:"Attachments,omitempty"`
	InlinedAttachments       []Attachment      `json:"InlinedAttachments,omitempty"`
	Priority                 int               `json:"Priority,omitempty"`
	CustomCampaign           string            `json:"CustomCampaign,omitempty"`
	DeduplicateCampaign      bool              `json:"DeduplicateCampaign,omitempty"`
	MonitoringCategory       string            `json:"MonitoringCategory,omitempty"`
	TrackOpens               string            `json:"TrackOpens,omitempty"`
	TrackClicks              string            `json:"TrackClicks,omitempty"`
	CustomID                 string            `json:"CustomID,omitempty"`
	EventPayload             string            `json:"EventPayload,omitempty"`
	URLTags                  string            `json:"URLTags,omitempty"`
	StatisticsContactsListID int64             `json:"StatisticsContactsListID,omitempty"`
	Headers                  map[string]string `json:"Headers,omitempty"`
	Variables                map[string]any    `json:"Variables,omitempty"`
}

// SendRequest is the body of POST /v3.1/send.
type SendRequest struct {
	// Messages is optional to the decoder: the sink checks it itself, to
	// answer a missing one with Mailjet's own code (mj-0003).
	Messages             []Message `json:"Messages,omitempty"`
	SandboxMode          bool      `json:"SandboxMode,omitempty"`
	AdvanceErrorHandling bool      `json:"AdvanceErrorHandling,omitempty"`
}

// SentRecipient is what Mailjet returns for each recipient of an accepted
// message: one message per recipient, each with its own ids.
type SentRecipient struct {
	Email       string `json:"Email"`
	MessageUUID string `json:"MessageUUID"`
	MessageID   int64  `json:"MessageID"`
	MessageHref string `json:"MessageHref"`
}

// MessageResult is the outcome of one message of a send request: Status
// "success" with the recipients' ids, or "error" with the errors.
type MessageResult struct {
	Status   string
	CustomID string
	To       []SentRecipient
	Cc       []SentRecipient
	Bcc      []SentRecipient
	Errors   []Error
}

// MarshalJSON writes the two shapes Mailjet uses: a success always carries
// CustomID, To, Cc and Bcc (empty arrays, not null); an error only its
// errors.
func (m MessageResult) MarshalJSON() ([]byte, error) {
	if m.Status == statusError {
		return json.Marshal(struct {
			Status string  `json:"Status"`
			Errors []Error `json:"Errors"`
		}{m.Status, m.Errors})
	}
	nonNil := func(s []SentRecipient) []SentRecipient {
		if s == nil {
			return []SentRecipient{}
		}
		return s
	}
	return json.Marshal(struct {
		Status   string          `json:"Status"`
		CustomID string          `json:"CustomID"`
		To       []SentRecipient `json:"To"`
		Cc       []SentRecipient `json:"Cc"`
		Bcc      []SentRecipient `json:"Bcc"`
	}{m.Status, m.CustomID, nonNil(m.To), nonNil(m.Cc), nonNil(m.Bcc)})
}

// SendResponse is the body of a send's answer, one result per message in
// the order sent.
type SendResponse struct {
	Messages []MessageResult `json:"Messages"`
}

// Error is Mailjet's error object: alone as the body of a global error
// (authentication, malformed JSON, a server failure), or in a message
// result's Errors.
type Error struct {
	ErrorIdentifier string   `json:"ErrorIdentifier"`
	ErrorCode       string   `json:"ErrorCode,omitempty"`
	StatusCode      int      `json:"StatusCode"`
	ErrorMessage    string   `json:"ErrorMessage"`
	ErrorRelatedTo  []string `json:"ErrorRelatedTo,omitempty"`
}

const (
	statusSuccess = "success"
	statusError   = "error"
)

// Mailjet's error codes the sink produces (the "Send API errors" table).
const (
	codeAuth            = "mj-0015" // no valid credentials
	codeMalformed       = "mj-0002" // the payload is not valid JSON or has wrong types
	codeMissing         = "mj-0003" // a mandatory property is missing or null
	codeNotAllowed      = "mj-0005" // a value outside the allowed ones
	codeEmptyArray      = "mj-0007" // an array that must not be empty is
	codeTooManyItems    = "mj-0008" // an array has more than 50 items
	codeTooLarge        = "mj-0011" // the payload is over the size limit
	codeEmptyString     = "mj-0012" // an empty string where a value is needed
	codeBadEmail        = "mj-0013" // an email address is malformed
	codeNoContent       = "send-0003"
	codeForbiddenHeader = "send-0011"
	codeTooManyRcpts    = "send-0015"
)

// Mailjet's limits: 50 messages per call, 50 recipients per message.
const (
	maxMessages   = 50
	maxRecipients = 50
)

func newError(status int, code, msg string, relatedTo ...string) Error {
	return Error{ErrorIdentifier: uuid.NewString(), ErrorCode: code, StatusCode: status, ErrorMessage: msg, ErrorRelatedTo: relatedTo}
}

func invalid(code, msg string, relatedTo ...string) Error {
	return newError(400, code, msg, relatedTo...)
}

// forbiddenHeaders are the headers Mailjet refuses in Headers because a
// message property sets them (send-0011); keys are canonical.
var forbiddenHeaders = map[string]bool{}

func init() {
	for _, h := range []string{
		"From", "Sender", "Subject", "To", "Cc", "Bcc", "Reply-To", "Return-Path",
		"Content-Type", "Content-Transfer-Encoding", "MIME-Version",
		"X-MJ-TemplateID", "X-MJ-TemplateLanguage", "X-MJ-TemplateErrorReporting",
		"X-MJ-TemplateErrorDeliver", "X-MJ-CustomID", "X-MJ-EventPayload",
		"X-MJ-MonitoringCategory", "X-Mailjet-Prio", "X-Mailjet-Campaign",
		"X-Mailjet-DeduplicateCampaign", "X-Mailjet-TrackOpen", "X-Mailjet-TrackClick",
	} {
		forbiddenHeaders[strings.ToLower(h)] = true
	}
}

// validate checks a message the way Mailjet does before accepting it and
// returns every error found, so a client fixes them in one round trip.
func validate(m Message) []Error {
	var errs []Error
	if m.From == nil {
		errs = append(errs, invalid(codeMissing, "The From is mandatory but missing from the input", "From"))
	} else {
		errs = append(errs, checkAddress("From", *m.From)...)
	}
	for _, opt := range []struct {
		field string
		addr  *Address
	}{{"Sender", m.Sender}, {"ReplyTo", m.ReplyTo}, {"TemplateErrorReporting", m.TemplateErrorReporting}} {
		if opt.addr != nil {
			errs = append(errs, checkAddress(opt.field, *opt.addr)...)
		}
	}
	switch {
	case m.To == nil:
		errs = append(errs, invalid(codeMissing, "The To is mandatory but missing from the input", "To"))
	case len(m.To) == 0:
		errs = append(errs, invalid(codeEmptyArray, "The To array must contain at least one recipient", "To"))
	}
	for _, list := range []struct {
		field string
		addrs []Address
	}{{"To", m.To}, {"Cc", m.Cc}, {"Bcc", m.Bcc}} {
		for i, a := range list.addrs {
			errs = append(errs, checkAddress(fmt.Sprintf("%s[%d]", list.field, i), a)...)
		}
	}
	if n := len(m.To) + len(m.Cc) + len(m.Bcc); n > maxRecipients {
		errs = append(errs, invalid(codeTooManyRcpts, fmt.Sprintf("The message has %d recipients; at most %d are allowed", n, maxRecipients), "To", "Cc", "Bcc"))
	}
	if m.TemplateID == 0 {
		if m.Subject == "" {
			errs = append(errs, invalid(codeMissing, "The Subject is mandatory but missing from the input", "Subject"))
		}
		if m.TextPart == "" && m.HTMLPart == "" {
			errs = append(errs, invalid(codeNoContent, "At least HTMLPart, TextPart or TemplateID must be provided", "HTMLPart", "TextPart", "TemplateID"))
		}
	}
	for _, t := range []struct{ field, value string }{{"TrackOpens", m.TrackOpens}, {"TrackClicks", m.TrackClicks}} {
		switch t.value {
		case "", "account_default", "disabled", "enabled":
		default:
			errs = append(errs, invalid(codeNotAllowed, fmt.Sprintf("%q is not an allowed value; use account_default, disabled or enabled", t.value), t.field))
		}
	}
	for name := range m.Headers {
		if forbiddenHeaders[strings.ToLower(name)] {
			errs = append(errs, invalid(codeForbiddenHeader, fmt.Sprintf("The header %q must be set through its message property", name), fmt.Sprintf("Headers[%q]", name)))
		}
	}
	for _, list := range []struct {
		field string
		files []Attachment
	}{{"Attachments", m.Attachments}, {"InlinedAttachments", m.InlinedAttachments}} {
		for i, a := range list.files {
			for _, f := range []struct{ name, value string }{{"ContentType", a.ContentType}, {"Filename", a.Filename}, {"Base64Content", a.Base64Content}} {
				if f.value == "" {
					errs = append(errs, invalid(codeEmptyString, "Empty string value is not allowed", fmt.Sprintf("%s[%d].%s", list.field, i, f.name)))
				}
			}
		}
	}
	return errs
}

// checkAddress checks an address object found at field.
func checkAddress(field string, a Address) []Error {
	if a.Email == "" {
		return []Error{invalid(codeEmptyString, "Empty string value is not allowed", field+".Email")}
	}
	if !validEmail(a.Email) {
		return []Error{invalid(codeBadEmail, fmt.Sprintf("%q is an invalid email address.", a.Email), field+".Email")}
	}
	return nil
}

// validEmail accepts a bare addr-spec (no display name, no angle brackets),
// as Mailjet's Email properties require.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}
