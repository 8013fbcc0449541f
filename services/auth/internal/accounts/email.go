package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// EmailTopic is the outbox topic of the emails that carry a token
// (verification, password reset); DeliverEmail is its handler.
//
// These do not go through mail.Enqueue like other emails: an outbox row
// keeps its payload for good, and a payload holding the link would keep a
// live token in plaintext in the database. The row records only which
// email to send to which account; the token is drawn when the email is
// sent, and only its hash is stored.
const EmailTopic = "auth.token-email"

// purpose is what an emailed token proves it may do.
type purpose string

const (
	verifyEmail   purpose = "verify_email"
	resetPassword purpose = "reset_password"
)

// ttl is how long a token of the purpose stays valid.
func (p purpose) ttl() time.Duration {
	if p == resetPassword {
		return time.Hour
	}
	return 24 * time.Hour
}

func (p purpose) noun() string {
	if p == resetPassword {
		return "password reset"
	}
	return "verification"
}

// renew says where to get a new token of the purpose.
func (p purpose) renew() string {
	if p == resetPassword {
		return "POST /v1/password/forgot"
	}
	return "POST /v1/verify-email/resend"
}

// tokenEmailJob is the payload of an EmailTopic message.
type tokenEmailJob struct {
	Purpose   purpose   `json:"purpose"`
	AccountID uuid.UUID `json:"account_id"`
}

// enqueueTokenEmail queues, in tx, an email with a fresh token of purpose p
// for the account.
func enqueueTokenEmail(ctx context.Context, tx pgx.Tx, p purpose, accountID uuid.UUID) error {
	payload, err := json.Marshal(tokenEmailJob{Purpose: p, AccountID: accountID})
	if err != nil {
		return err
	}
	_, err = outbox.Enqueue(ctx, tx, outbox.Message{Topic: EmailTopic, Payload: payload})
	return err
}

// DeliverEmail is the outbox handler of EmailTopic: it draws the token,
// stores its hash and sends the email. A retry draws another token; the
// earlier one, if its email got through after all, stays valid until it
// expires or its account uses a token of the same purpose. Nothing is sent
// when the email has become pointless (account gone, disabled, or already
// verified).
func (s *Service) DeliverEmail(ctx context.Context, d outbox.Delivery) error {
	var job tokenEmailJob
	if err := json.Unmarshal(d.Payload, &job); err != nil || (job.Purpose != verifyEmail && job.Purpose != resetPassword) {
		return outbox.Permanent(fmt.Errorf("token email %s: undecodable payload (%v)", d.ID, err))
	}
	acc, err := getAccount(ctx, s.pool, job.AccountID)
	if apierr.Is(err, apierr.NotFound) {
		logging.Of(ctx, s.log).Debug("token email for a deleted account; not sent", "message_id", d.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if acc.DisabledAt != nil || (job.Purpose == verifyEmail && acc.VerifiedAt != nil) {
		logging.Of(ctx, s.log).Debug("token email no longer needed; not sent", "message_id", d.ID, "purpose", job.Purpose)
		return nil
	}
	plain, hash := newSecret()
	if err := insertEmailToken(ctx, s.pool, hash, acc.ID, job.Purpose, job.Purpose.ttl()); err != nil {
		return err
	}
	return s.sender.Send(ctx, d.ID, s.tokenEmail(job.Purpose, acc, plain))
}

// spendEmailToken marks a token of purpose p used, in tx, and returns its
// account; every failure is a precise 400 on the token field.
func spendEmailToken(ctx context.Context, tx pgx.Tx, hash []byte, p purpose) (uuid.UUID, error) {
	tok, err := lockEmailToken(ctx, tx, hash, p)
	if err := usable(tok, err, p); err != nil {
		return uuid.Nil, err
	}
	// Spending one token of a purpose spends the account's others: a
	// password reset link mailed earlier must not work after a reset.
	return tok.AccountID, spendEmailTokens(ctx, tx, tok.AccountID, p)
}

// checkEmailToken is spendEmailToken's verdict without spending nor
// locking: work that is costly (hashing a new password) is done only for
// a token that can succeed, so garbage tokens cost one indexed read.
func checkEmailToken(ctx context.Context, q pgdb.Querier, hash []byte, p purpose) error {
	tok, err := getEmailToken(ctx, q, hash, p)
	return usable(tok, err, p)
}

// usable says why a token read (tok, err) cannot be used, or nil.
func usable(tok emailToken, err error, p purpose) error {
	switch {
	case apierr.Is(err, apierr.NotFound):
		return tokenError(p, "is not valid: check that the link was copied whole")
	case err != nil:
		return err
	case tok.UsedAt != nil:
		return tokenError(p, "was already used; ask for a new one with "+p.renew())
	case !tok.Now.Before(tok.ExpiresAt):
		return tokenError(p, fmt.Sprintf("expired at %s; ask for a new one with %s", tok.ExpiresAt.UTC().Format(time.RFC3339), p.renew()))
	}
	return nil
}

// tokenError is the precise 400 for an emailed token that cannot be used.
func tokenError(p purpose, why string) error {
	return apierr.InvalidFields(apierr.FieldError{Field: "token", Detail: fmt.Sprintf("this %s token %s", p.noun(), why)})
}

// tokenEmail writes the email that carries token.
func (s *Service) tokenEmail(p purpose, acc Account, token string) mail.Message {
	to := []mail.Address{{Email: acc.Email, Name: acc.DisplayName}}
	name := html.EscapeString(acc.DisplayName)
	if p == resetPassword {
		link := withToken(s.cfg.ResetURL, token)
		return mail.Message{
			To:      to,
			Subject: "Reset your Mylittleshopping password",
			Text: fmt.Sprintf("Hello %s,\n\nSomeone, hopefully you, asked to reset the password of your Mylittleshopping account. "+
				"Choose a new one within an hour with this link:\n\n%s\n\nIf it was not you, ignore this email: your password stays as it is.\n",
				acc.DisplayName, link),
			HTML: fmt.Sprintf("<p>Hello %s,</p><p>Someone, hopefully you, asked to reset the password of your Mylittleshopping account. "+
				"Choose a new one within an hour with this link:</p><p><a href=\"%s\">Reset my password</a></p>"+
				"<p>If it was not you, ignore this email: your password stays as it is.</p>",
				name, html.EscapeString(link)),
		}
	}
	link := withToken(s.cfg.VerifyURL, token)
	return mail.Message{
		To:      to,
		Subject: "Confirm your email address",
		Text: fmt.Sprintf("Hello %s,\n\nWelcome to Mylittleshopping! Confirm your email address within 24 hours by opening this link:\n\n%s\n\n"+
			"If you did not sign up, ignore this email.\n", acc.DisplayName, link),
		HTML: fmt.Sprintf("<p>Hello %s,</p><p>Welcome to Mylittleshopping! Confirm your email address within 24 hours:</p>"+
			"<p><a href=\"%s\">Confirm my address</a></p><p>If you did not sign up, ignore this email.</p>",
			name, html.EscapeString(link)),
	}
}

// signupAttemptEmail tells an address's owner that someone tried to sign up
// with it: the account holder learns of it, the person signing up does not.
func signupAttemptEmail(email string) mail.Message {
	return mail.Message{
		To:      []mail.Address{{Email: email}},
		Subject: "Someone tried to sign up with your address",
		Text: "Hello,\n\nSomeone, maybe you, tried to create a Mylittleshopping account with this address, which already has one. Nothing was changed.\n\n" +
			"If it was you, log in; if you forgot your password, ask for a reset link (POST /v1/password/forgot).\nIf it was not you, ignore this email.\n",
		HTML: "<p>Hello,</p><p>Someone, maybe you, tried to create a Mylittleshopping account with this address, which already has one. Nothing was changed.</p>" +
			"<p>If it was you, log in; if you forgot your password, ask for a reset link.</p><p>If it was not you, ignore this email.</p>",
	}
}

// failedLoginsEmail tells an address's owner that clients everywhere are
// failing to log in to it, and what that changes for them: nothing on
// their own devices.
func failedLoginsEmail(acc Account, period time.Duration) mail.Message {
	mins := int((period + time.Minute - 1) / time.Minute)
	return mail.Message{
		To:      []mail.Address{{Email: acc.Email, Name: acc.DisplayName}},
		Subject: "Many failed logins to your Mylittleshopping account",
		Text: fmt.Sprintf("Hello %s,\n\nIn the last minutes, many attempts to log in to your Mylittleshopping account failed, from many places. "+
			"For the next %d minutes the places that got your password wrong cannot try again; you can still log in as usual from a device that did not.\n\n"+
			"If these attempts were not yours, someone may be guessing your password: choose a long one that you use nowhere else (POST /v1/password).\n",
			acc.DisplayName, mins),
		HTML: fmt.Sprintf("<p>Hello %s,</p><p>In the last minutes, many attempts to log in to your Mylittleshopping account failed, from many places. "+
			"For the next %d minutes the places that got your password wrong cannot try again; you can still log in as usual from a device that did not.</p>"+
			"<p>If these attempts were not yours, someone may be guessing your password: choose a long one that you use nowhere else.</p>",
			html.EscapeString(acc.DisplayName), mins),
	}
}

// withToken returns base with #token=token: in the fragment, which a
// browser never sends to a server, so the token lands in no access log;
// the page at base reads it and posts it when the person acts (base was
// validated as a URL by Config).
func withToken(base, token string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base + "#token=" + url.QueryEscape(token)
	}
	u.Fragment = ""
	u.RawFragment = ""
	return u.String() + "#" + url.Values{"token": {token}}.Encode()
}
