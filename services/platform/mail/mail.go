// Package mail sends the shop's emails through the outbox: Enqueue writes an
// email in the caller's transaction (so it exists if and only if the
// business change committed), and the outbox relay hands it to Handler,
// which sends it with Mailjet's Send API v3.1, at least once. The outbox
// message id travels as Mailjet's CustomID, so a re-send is recognisable.
package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/outbox"
)

// Topic is the outbox topic of emails; a relay sends it with Handler.
const Topic = "email"

// maxRecipients is Mailjet's limit per message.
const maxRecipients = 50

// Address is an email address with an optional display name.
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Message is an email to send. It is stored as the outbox payload in this
// JSON form; fields are only ever added, so that a relay of the previous
// version still reads what a newer one enqueued.
type Message struct {
	To      []Address `json:"to"`
	Subject string    `json:"subject"`
	// Text and HTML are the two bodies; at least one is required, both are
	// best (clients without HTML, spam scores).
	Text string `json:"text,omitempty"`
	HTML string `json:"html,omitempty"`
}

// Validate checks what Mailjet would refuse, so that a bad email fails the
// business transaction that wrote it instead of dying in the outbox later.
func (m Message) Validate() error {
	var fields []apierr.FieldError
	if len(m.To) == 0 {
		fields = append(fields, apierr.FieldError{Field: "to", Detail: "needs at least one recipient"})
	}
	if len(m.To) > maxRecipients {
		fields = append(fields, apierr.FieldError{Field: "to", Detail: fmt.Sprintf("has %d recipients; at most %d are allowed", len(m.To), maxRecipients)})
	}
	for i, a := range m.To {
		if !validEmail(a.Email) {
			fields = append(fields, apierr.FieldError{Field: fmt.Sprintf("to[%d].email", i), Detail: fmt.Sprintf("%q is not an email address", a.Email)})
		}
	}
	if strings.TrimSpace(m.Subject) == "" {
		fields = append(fields, apierr.FieldError{Field: "subject", Detail: "is required"})
	}
	if m.Text == "" && m.HTML == "" {
		fields = append(fields, apierr.FieldError{Field: "text", Detail: "text or html is required"})
	}
	if len(fields) > 0 {
		return apierr.InvalidFields(fields...)
	}
	return nil
}

// validEmail accepts a bare address (no display name or angle brackets), the
// form Mailjet's Email properties take.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// Enqueue validates m and writes it into the outbox within tx, the caller's
// transaction. It returns the message id, which the relay sends to Mailjet
// as CustomID.
func Enqueue(ctx context.Context, tx pgx.Tx, m Message) (uuid.UUID, error) {
	if err := m.Validate(); err != nil {
		return uuid.Nil, fmt.Errorf("enqueue email: %w", err)
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return uuid.Nil, fmt.Errorf("enqueue email: %w", err)
	}
	// One recipient's emails arrive in the order they were queued: a failed
	// "shipped" waiting in backoff holds back the "delivered" behind it.
	key := "email:" + strings.ToLower(m.To[0].Email)
	return outbox.Enqueue(ctx, tx, outbox.Message{Topic: Topic, Payload: payload, OrderingKey: key})
}

// Handler delivers the outbox's emails with s. A payload that does not
// decode is a permanent failure: no retry can fix it.
func Handler(s *Sender) outbox.Handler {
	return func(ctx context.Context, d outbox.Delivery) error {
		var m Message
		if err := json.Unmarshal(d.Payload, &m); err != nil {
			return outbox.Permanent(fmt.Errorf("decode email %s: %w", d.ID, err))
		}
		return s.Send(ctx, d.ID, m)
	}
}
