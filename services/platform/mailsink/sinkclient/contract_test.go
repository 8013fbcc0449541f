package sinkclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/mailsink/sinkclient"
)

// TestClientAgainstSink drives the real sink through the client generated
// from openapi/mailsink.yaml: if the spec and the server drift apart, the
// typed responses stop decoding or the statuses stop matching.
func TestClientAgainstSink(t *testing.T) {
	t.Parallel()
	sink, err := mailsink.New(mailsink.Config{MaxMessages: 100, MaxBodyBytes: 1 << 20}, logging.ForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	auth := func(_ context.Context, r *http.Request) error {
		r.SetBasicAuth("public", "private")
		return nil
	}
	c, err := sinkclient.NewClientWithResponses(srv.URL, sinkclient.WithRequestEditorFn(auth))
	if err != nil {
		t.Fatal(err)
	}

	str := func(s string) *string { return &s }
	send := sinkclient.SendRequest{Messages: []sinkclient.Message{{
		From:     &sinkclient.Address{Email: "shop@mylittleshopping.dev", Name: str("Shop")},
		To:       &[]sinkclient.Address{{Email: "ann@example.com"}},
		Subject:  str("Verify your address"),
		TextPart: str("https://shop.example/verify?token=abc"),
		CustomID: str("msg-1"),
	}}}
	resp, err := c.SendMessagesWithResponse(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || resp.JSON200 == nil || len(resp.JSON200.Messages) != 1 {
		t.Fatalf("send: got %d %s, want 200 with one result", resp.StatusCode(), resp.Body)
	}
	if got := resp.JSON200.Messages[0]; got.Status != "success" || got.CustomID == nil || *got.CustomID != "msg-1" {
		t.Fatalf("send result: got %+v, want success with CustomID msg-1", got)
	}

	list, err := c.ListMessagesWithResponse(ctx, &sinkclient.ListMessagesParams{To: str("ANN@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if list.JSON200 == nil || len(*list.JSON200) != 1 || *(*list.JSON200)[0].Message.Subject != "Verify your address" {
		t.Fatalf("list: got %d %s, want the one message", list.StatusCode(), list.Body)
	}

	fail, err := c.FailNextSendsWithResponse(ctx, sinkclient.FailRequest{Count: 1})
	if err != nil || fail.StatusCode() >= 300 {
		t.Fatalf("fail-next: got %v %v", fail.StatusCode(), err)
	}
	refused, err := c.SendMessagesWithResponse(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if refused.StatusCode() < 500 {
		t.Fatalf("send after fail-next: got %d, want a 5xx", refused.StatusCode())
	}

	bad, err := c.SendMessagesWithResponse(ctx, sinkclient.SendRequest{Messages: []sinkclient.Message{{}}})
	if err != nil {
		t.Fatal(err)
	}
	if bad.StatusCode() != 400 || bad.JSON400 == nil {
		t.Fatalf("invalid send: got %d %s, want 400 in Mailjet's shape", bad.StatusCode(), bad.Body)
	}

	if clr, err := c.ClearMessagesWithResponse(ctx); err != nil || clr.StatusCode() >= 300 {
		t.Fatalf("clear: got %v %v", clr.StatusCode(), err)
	}
	empty, _ := c.ListMessagesWithResponse(ctx, nil)
	if empty.JSON200 == nil || len(*empty.JSON200) != 0 {
		t.Fatalf("after clear: got %s, want []", empty.Body)
	}
}
