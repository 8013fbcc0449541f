package servicetest

import (
	"net/http/httptest"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// Mail is a mail sink (platform/mailsink) served over HTTP, standing in
// for Mailjet.
type Mail struct {
	Sink *mailsink.Sink
	URL  string // its address, for Mailjet's API and the sink's own
}

// StartMail serves a sink of cfg until the test ends; it logs through t.
func StartMail(t testing.TB, cfg mailsink.Config) Mail {
	t.Helper()
	sink, err := mailsink.New(cfg, logging.ForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	return Mail{Sink: sink, URL: srv.URL}
}

// Env is the configuration that has a service send its email (through its
// outbox, polled every 50ms) to the sink, from the address from.
func (m Mail) Env(from string) map[string]string {
	return map[string]string{
		"MAILJET_API_KEY_PUBLIC":  "test-public",
		"MAILJET_API_KEY_PRIVATE": "test-private",
		"MAILJET_BASE_URL":        m.URL,
		"MAIL_FROM_EMAIL":         from,
		"OUTBOX_POLL_INTERVAL":    "50ms",
		"OUTBOX_BACKOFF_BASE":     "50ms",
		"OUTBOX_BACKOFF_MAX":      "200ms",
	}
}
