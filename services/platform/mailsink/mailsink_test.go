package mailsink_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	mailjet "github.com/mailjet/mailjet-apiv3-go/v4"

	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// newSink serves a sink configured from env (defaults for the rest) the way
// cmd/mailsink does: through config.Load and httpx's middleware.
func newSink(t *testing.T, env map[string]string) (*mailsink.Sink, *httptest.Server) {
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
	return sink, srv
}

// client is Mailjet's own Go client pointed at the sink, as mail.Sender
// points it.
func client(srv *httptest.Server) *mailjet.Client {
	return mailjet.NewMailjetClient("public-key", "private-key", srv.URL+"/v3")
}

func simpleMessage(to, customID string) mailjet.InfoMessagesV31 {
	return mailjet.InfoMessagesV31{
		From:     &mailjet.RecipientV31{Email: "shop@example.com", Name: "Shop"},
		To:       &mailjet.RecipientsV31{{Email: to}},
		Subject:  "Welcome",
		TextPart: "Hello",
		CustomID: customID,
	}
}

func send(t *testing.T, c *mailjet.Client, msgs ...mailjet.InfoMessagesV31) (*mailjet.ResultsV31, error) {
	t.Helper()
	return c.SendMailV31(&mailjet.MessagesV31{Info: msgs})
}

// do sends a raw request to the sink; user "" means no authentication.
func do(t *testing.T, method, url, body, user string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, "private-key")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestSendThroughMailjetClient(t *testing.T) {
	t.Parallel()
	sink, srv := newSink(t, nil)
	msg := mailjet.InfoMessagesV31{
		From:     &mailjet.RecipientV31{Email: "shop@example.com", Name: "Shop"},
		To:       &mailjet.RecipientsV31{{Email: "ann@example.com", Name: "Ann"}},
		Cc:       &mailjet.RecipientsV31{{Email: "bob@example.com"}},
		Subject:  "Verify your address",
		TextPart: "Open https://shop.example/verify?t=abc",
		HTMLPart: "<a href=\"https://shop.example/verify?t=abc\">Verify</a>",
		CustomID: "0190d6a4-0000-7000-8000-000000000001",
		Headers:  map[string]any{"X-Outbox-Message-ID": "0190d6a4-0000-7000-8000-000000000001"},
	}
	res, err := send(t, client(srv), msg)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(res.ResultsV31) != 1 {
		t.Fatalf("got %d results, want 1", len(res.ResultsV31))
	}
	r := res.ResultsV31[0]
	if r.Status != "success" || r.CustomID != msg.CustomID {
		t.Errorf("got status %q custom id %q, want success %q", r.Status, r.CustomID, msg.CustomID)
	}
	if len(r.To) != 1 || r.To[0].Email != "ann@example.com" || r.To[0].MessageUUID == "" || r.To[0].MessageID == 0 || r.To[0].MessageHref == "" {
		t.Errorf("got To %+v, want one recipient with its ids", r.To)
	}
	if len(r.Cc) != 1 || r.Cc[0].MessageID == r.To[0].MessageID {
		t.Errorf("got Cc %+v, want one recipient with ids of its own", r.Cc)
	}

	want := mailsink.Message{
		From:     &mailsink.Address{Email: "shop@example.com", Name: "Shop"},
		To:       []mailsink.Address{{Email: "ann@example.com", Name: "Ann"}},
		Cc:       []mailsink.Address{{Email: "bob@example.com"}},
		Subject:  msg.Subject,
		TextPart: msg.TextPart,
		HTMLPart: msg.HTMLPart,
		CustomID: msg.CustomID,
		Headers:  map[string]string{"X-Outbox-Message-ID": msg.CustomID},
	}
	// Read back over HTTP, as a journey does.
	resp, body := do(t, http.MethodGet, srv.URL+"/messages?custom_id="+msg.CustomID, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /messages: got %d %s, want 200", resp.StatusCode, body)
	}
	var stored []mailsink.StoredMessage
	if err := json.Unmarshal(body, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Fatalf("got %d stored messages, want 1", len(stored))
	}
	if diff := cmp.Diff(want, stored[0].Message); diff != "" {
		t.Errorf("stored message mismatch (-want +got):\n%s", diff)
	}
	wantRcpts := []mailsink.SentRecipient{
		{Email: r.To[0].Email, MessageUUID: r.To[0].MessageUUID, MessageID: r.To[0].MessageID, MessageHref: r.To[0].MessageHref},
		{Email: r.Cc[0].Email, MessageUUID: r.Cc[0].MessageUUID, MessageID: r.Cc[0].MessageID, MessageHref: r.Cc[0].MessageHref},
	}
	if diff := cmp.Diff(wantRcpts, stored[0].Recipients); diff != "" {
		t.Errorf("stored recipients differ from the answer's (-answer +stored):\n%s", diff)
	}
	if stored[0].Seq != 1 || stored[0].ReceivedAt.IsZero() {
		t.Errorf("got seq %d received %v, want 1 and a time", stored[0].Seq, stored[0].ReceivedAt)
	}
	if got := sink.Messages(mailsink.Filter{}); len(got) != 1 {
		t.Errorf("got %d messages in the sink, want 1", len(got))
	}
}

func TestSendRequiresBasicAuth(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"MAILSINK_API_KEY_PUBLIC": "public-key", "MAILSINK_API_KEY_PRIVATE": "private-key"}
	body := `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t"}]}`
	tests := []struct {
		name       string
		env        map[string]string
		user       string
		wantStatus int
	}{
		{"no credentials", nil, "", http.StatusUnauthorized},
		{"any credentials when none configured", nil, "whoever", http.StatusOK},
		{"wrong key", keys, "other-key", http.StatusUnauthorized},
		{"configured key", keys, "public-key", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink, srv := newSink(t, tt.env)
			resp, b := do(t, http.MethodPost, srv.URL+"/v3.1/send", body, tt.user)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusUnauthorized {
				return
			}
			var e mailsink.Error
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("401 body %s: %v", b, err)
			}
			if e.StatusCode != 401 || e.ErrorCode != "mj-0015" || e.ErrorIdentifier == "" || e.ErrorMessage == "" {
				t.Errorf("got %+v, want Mailjet's 401 error (StatusCode 401, mj-0015, an identifier, a message)", e)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("got no WWW-Authenticate header, want one on 401")
			}
			if n := len(sink.Messages(mailsink.Filter{})); n != 0 {
				t.Errorf("got %d stored messages, want 0", n)
			}
		})
	}

	// Mailjet's client reports the 401 as its ErrorInfoV31.
	_, srv := newSink(t, keys)
	_, err := send(t, mailjet.NewMailjetClient("public-key", "wrong", srv.URL+"/v3"), simpleMessage("ann@example.com", "x"))
	var info *mailjet.ErrorInfoV31
	if !errors.As(err, &info) || info.StatusCode != http.StatusUnauthorized {
		t.Errorf("got %v, want a *mailjet.ErrorInfoV31 with StatusCode 401", err)
	}
}

// problem is an error found in a response, without its random identifier.
type problem struct {
	Code      string
	RelatedTo []string
}

func TestSendValidatesLikeMailjet(t *testing.T) {
	t.Parallel()
	valid := `{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t"}`
	many := func(n int, item string) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	tests := []struct {
		name string
		body string
		// wantGlobal is the error of a request refused as a whole;
		// wantMessages the errors of each message otherwise (nil: accepted).
		wantStatus   int
		wantGlobal   *problem
		wantMessages [][]problem
	}{
		{"valid", `{"Messages":[` + valid + `]}`, 200, nil, [][]problem{nil}},
		{"template instead of subject and body", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"TemplateID":42,"TemplateLanguage":true,"Variables":{"name":"Ann"}}]}`, 200, nil, [][]problem{nil}},
		{"malformed JSON", `{"Messages":[`, 400, &problem{"mj-0002", nil}, nil},
		{"type mismatch", `{"Messages":[{"To":"ann@example.com"}]}`, 400, &problem{"mj-0002", []string{"Messages.To"}}, nil},
		{"unknown property", `{"Messages":[` + valid + `],"Globalz":{}}`, 400, &problem{"mj-0002", []string{"Globalz"}}, nil},
		{"no Messages", `{}`, 400, &problem{"mj-0003", []string{"Messages"}}, nil},
		{"empty Messages", `{"Messages":[]}`, 400, &problem{"mj-0007", []string{"Messages"}}, nil},
		{"51 messages", `{"Messages":[` + many(51, valid) + `]}`, 400, &problem{"mj-0008", []string{"Messages"}}, nil},
		{"no From", `{"Messages":[{"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"mj-0003", []string{"From"}}}}},
		{"bad From.Email", `{"Messages":[{"From":{"Email":"shop"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"mj-0013", []string{"From.Email"}}}}},
		{"no To", `{"Messages":[{"From":{"Email":"shop@example.com"},"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"mj-0003", []string{"To"}}}}},
		{"empty To", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[],"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"mj-0007", []string{"To"}}}}},
		{"empty and bad recipients", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":""}],"Bcc":[{"Email":"Ann <ann@example.com>"}],"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"mj-0012", []string{"To[0].Email"}}, {"mj-0013", []string{"Bcc[0].Email"}}}}},
		{"no Subject nor body", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}]}]}`, 400, nil,
			[][]problem{{{"mj-0003", []string{"Subject"}}, {"send-0003", []string{"HTMLPart", "TextPart", "TemplateID"}}}}},
		{"51 recipients", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[` + many(51, `{"Email":"ann@example.com"}`) + `],"Subject":"s","TextPart":"t"}]}`, 400, nil,
			[][]problem{{{"send-0015", []string{"To", "Cc", "Bcc"}}}}},
		{"header with a property", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t","Headers":{"X-MJ-CustomID":"x"}}]}`, 400, nil,
			[][]problem{{{"send-0011", []string{`Headers["X-MJ-CustomID"]`}}}}},
		{"TrackOpens value", `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"t","TrackOpens":"always"}]}`, 400, nil,
			[][]problem{{{"mj-0005", []string{"TrackOpens"}}}}},
		{"one bad message of two", `{"Messages":[` + valid + `,{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s"}]}`, 400, nil,
			[][]problem{nil, {{"send-0003", []string{"HTMLPart", "TextPart", "TemplateID"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink, srv := newSink(t, nil)
			resp, b := do(t, http.MethodPost, srv.URL+"/v3.1/send", tt.body, "public-key")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			accepted := 0
			if tt.wantGlobal != nil {
				var e mailsink.Error
				if err := json.Unmarshal(b, &e); err != nil {
					t.Fatal(err)
				}
				got := problem{e.ErrorCode, e.ErrorRelatedTo}
				if diff := cmp.Diff(*tt.wantGlobal, got); diff != "" {
					t.Errorf("global error mismatch (-want +got):\n%s\nbody %s", diff, b)
				}
				if e.StatusCode != tt.wantStatus || e.ErrorIdentifier == "" || e.ErrorMessage == "" {
					t.Errorf("got %+v, want StatusCode %d, an identifier and a message", e, tt.wantStatus)
				}
			} else {
				var res struct {
					Messages []struct {
						Status   string
						CustomID *string
						To       []mailsink.SentRecipient
						Errors   []mailsink.Error
					}
				}
				if err := json.Unmarshal(b, &res); err != nil {
					t.Fatal(err)
				}
				var got [][]problem
				for _, m := range res.Messages {
					var ps []problem
					for _, e := range m.Errors {
						ps = append(ps, problem{e.ErrorCode, e.ErrorRelatedTo})
						if e.StatusCode != 400 || e.ErrorIdentifier == "" {
							t.Errorf("got error %+v, want StatusCode 400 and an identifier", e)
						}
					}
					wantStatus := "success"
					if ps != nil {
						wantStatus = "error"
					} else {
						accepted++
						if m.CustomID == nil || len(m.To) == 0 {
							t.Errorf("got success %+v, want CustomID and To", m)
						}
					}
					if m.Status != wantStatus {
						t.Errorf("got Status %q, want %q", m.Status, wantStatus)
					}
					got = append(got, ps)
				}
				if diff := cmp.Diff(tt.wantMessages, got); diff != "" {
					t.Errorf("message errors mismatch (-want +got):\n%s\nbody %s", diff, b)
				}
			}
			if n := len(sink.Messages(mailsink.Filter{})); n != accepted {
				t.Errorf("got %d stored messages, want %d (the accepted ones)", n, accepted)
			}
		})
	}
}

func TestMailjetClientReadsValidationErrors(t *testing.T) {
	t.Parallel()
	_, srv := newSink(t, nil)
	msg := simpleMessage("not-an-address", "x")
	_, err := send(t, client(srv), msg)
	var fb *mailjet.APIFeedbackErrorsV31
	if !errors.As(err, &fb) {
		t.Fatalf("got %T %v, want *mailjet.APIFeedbackErrorsV31", err, err)
	}
	want := []mailjet.APIErrorDetailsV31{{ErrorCode: "mj-0013", StatusCode: 400, ErrorMessage: `"not-an-address" is an invalid email address.`, ErrorRelatedTo: []string{"To[0].Email"}}}
	if len(fb.Messages) != 1 {
		t.Fatalf("got %d messages in the error, want 1", len(fb.Messages))
	}
	if diff := cmp.Diff(want, fb.Messages[0].Errors, cmpopts.IgnoreFields(mailjet.APIErrorDetailsV31{}, "ErrorIdentifier")); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	sink, srv := newSink(t, nil)
	c := client(srv)
	resp, b := do(t, http.MethodPost, srv.URL+"/control/fail", `{"count": 2, "status": 503}`, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /control/fail: got %d %s, want 204", resp.StatusCode, b)
	}
	// An unauthenticated send is refused before an injected failure is used.
	if resp, b := do(t, http.MethodPost, srv.URL+"/v3.1/send", `{}`, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: got %d %s, want 401", resp.StatusCode, b)
	}
	for i := 1; i <= 2; i++ {
		_, err := send(t, c, simpleMessage("ann@example.com", fmt.Sprint(i)))
		var info *mailjet.ErrorInfoV31
		if !errors.As(err, &info) || info.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("send %d: got %v, want a *mailjet.ErrorInfoV31 with StatusCode 503", i, err)
		}
	}
	if _, err := send(t, c, simpleMessage("ann@example.com", "3")); err != nil {
		t.Fatalf("send 3: got %v, want success once the failures are used up", err)
	}
	got := sink.Messages(mailsink.Filter{})
	if len(got) != 1 || got[0].Message.CustomID != "3" {
		t.Fatalf("got %+v, want only the third message stored", got)
	}

	// A 400 injected comes back as Mailjet's validation error type.
	if err := sink.FailNext(1, http.StatusBadRequest); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, c, simpleMessage("ann@example.com", "4"))
	var fb *mailjet.APIFeedbackErrorsV31
	if !errors.As(err, &fb) {
		t.Errorf("got %T %v, want *mailjet.APIFeedbackErrorsV31 for an injected 400", err, err)
	}
}

func TestControlFailRejectsBadRequests(t *testing.T) {
	t.Parallel()
	_, srv := newSink(t, nil)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantField  string
	}{
		{"count missing", `{"status": 500}`, 400, "count"},
		{"count negative", `{"count": -1}`, 400, "count"},
		{"status not an error", `{"count": 1, "status": 200}`, 400, "status"},
		{"unknown field", `{"count": 1, "code": 500}`, 400, "code"},
		{"not JSON", `count=1`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := do(t, http.MethodPost, srv.URL+"/control/fail", tt.body, "")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != httpx.ProblemContentType {
				t.Errorf("got Content-Type %q, want %q", ct, httpx.ProblemContentType)
			}
			var p httpx.Problem
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if tt.wantField != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField) {
				t.Errorf("got errors %+v, want one for field %q", p.Errors, tt.wantField)
			}
		})
	}
}

func TestListFiltersAndClear(t *testing.T) {
	t.Parallel()
	_, srv := newSink(t, nil)
	c := client(srv)
	cc := simpleMessage("bob@example.com", "2")
	cc.Cc = &mailjet.RecipientsV31{{Email: "Ann@Example.com"}}
	for _, m := range []mailjet.InfoMessagesV31{simpleMessage("ann@example.com", "1"), cc, simpleMessage("carl@example.com", "3")} {
		if _, err := send(t, c, m); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) []string {
		t.Helper()
		resp, b := do(t, http.MethodGet, srv.URL+"/messages"+query, "", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /messages%s: got %d %s, want 200", query, resp.StatusCode, b)
		}
		var got []mailsink.StoredMessage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, m := range got {
			ids = append(ids, fmt.Sprintf("%d:%s", m.Seq, m.Message.CustomID))
		}
		return ids
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"1:1", "2:2", "3:3"}},
		{"?to=ann@example.com", []string{"1:1", "2:2"}}, // Cc counts; case is ignored
		{"?to=ANN@example.com&custom_id=2", []string{"2:2"}},
		{"?custom_id=3", []string{"3:3"}},
		{"?after=1", []string{"2:2", "3:3"}},
		{"?to=nobody@example.com", []string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.query)); diff != "" {
			t.Errorf("GET /messages%s mismatch (-want +got):\n%s", tt.query, diff)
		}
	}
	for _, bad := range []string{"?customid=1", "?after=x", "?after=-1", "?to=a&to=b"} {
		if resp, b := do(t, http.MethodGet, srv.URL+"/messages"+bad, "", ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /messages%s: got %d %s, want 400", bad, resp.StatusCode, b)
		}
	}

	if resp, b := do(t, http.MethodDelete, srv.URL+"/messages", "", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /messages: got %d %s, want 204", resp.StatusCode, b)
	}
	if got := list(""); len(got) != 0 {
		t.Fatalf("got %v after DELETE, want nothing", got)
	}
	if _, err := send(t, c, simpleMessage("ann@example.com", "4")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"4:4"}, list("")); diff != "" {
		t.Errorf("sequence after a clear (-want +got):\n%s", diff)
	}
}

func TestStoreIsBounded(t *testing.T) {
	t.Parallel()
	sink, srv := newSink(t, map[string]string{"MAILSINK_MAX_MESSAGES": "3"})
	c := client(srv)
	for i := 1; i <= 5; i++ {
		if _, err := send(t, c, simpleMessage("ann@example.com", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for _, m := range sink.Messages(mailsink.Filter{}) {
		got = append(got, m.Seq)
	}
	if diff := cmp.Diff([]int64{3, 4, 5}, got); diff != "" {
		t.Errorf("kept messages (-want +got):\n%s", diff)
	}
}

func TestSandboxModeValidatesButStoresNothing(t *testing.T) {
	t.Parallel()
	sink, srv := newSink(t, nil)
	// Mailjet's Go client spells the property SandBoxMode; JSON property
	// names are matched regardless of case, as Mailjet does.
	res, err := client(srv).SendMailV31(&mailjet.MessagesV31{Info: []mailjet.InfoMessagesV31{simpleMessage("ann@example.com", "s")}, SandBoxMode: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.ResultsV31[0]; r.Status != "success" || len(r.To) != 1 || r.To[0].MessageID != 0 || r.To[0].MessageUUID != "" {
		t.Errorf("got %+v, want success without ids", r)
	}
	if n := len(sink.Messages(mailsink.Filter{})); n != 0 {
		t.Errorf("got %d stored messages, want 0 in sandbox mode", n)
	}
}

func TestSendBodyLimit(t *testing.T) {
	t.Parallel()
	_, srv := newSink(t, map[string]string{"MAILSINK_MAX_BODY_BYTES": "2048"})
	body := `{"Messages":[{"From":{"Email":"shop@example.com"},"To":[{"Email":"ann@example.com"}],"Subject":"s","TextPart":"` + strings.Repeat("x", 4096) + `"}]}`
	resp, b := do(t, http.MethodPost, srv.URL+"/v3.1/send", body, "public-key")
	var e mailsink.Error
	_ = json.NewDecoder(bytes.NewReader(b)).Decode(&e)
	if resp.StatusCode != http.StatusBadRequest || e.ErrorCode != "mj-0011" {
		t.Errorf("got %d %s, want 400 with mj-0011", resp.StatusCode, b)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"defaults", nil, false},
		{"both keys", map[string]string{"MAILSINK_API_KEY_PUBLIC": "a", "MAILSINK_API_KEY_PRIVATE": "b"}, false},
		{"public key alone", map[string]string{"MAILSINK_API_KEY_PUBLIC": "a"}, true},
		{"no room", map[string]string{"MAILSINK_MAX_MESSAGES": "0"}, true},
		{"tiny body", map[string]string{"MAILSINK_MAX_BODY_BYTES": "10"}, true},
	}
	for _, tt := range tests {
		var cfg mailsink.Config
		err := config.Load(&cfg, config.MapLookup(tt.env))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
