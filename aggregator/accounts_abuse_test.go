package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/mailsink"
)

// TestAccountsAbuse is issue 12's accounts cases through the aggregator,
// on one stack of real services: a stranger cannot lock an owner out (3),
// a revoked access token is refused everywhere within the bound (9), and
// the emails' links open pages that a prefetch cannot trigger (10).
func TestAccountsAbuse(t *testing.T) {
	st := startStack(t)
	// The test client sits on loopback as the edge does: its
	// X-Forwarded-For names the client, as HAProxy's would.
	agg := st.startAggregator(t, 0, map[string]string{"AGGREGATOR_TRUSTED_PROXIES": "127.0.0.1/32,::1/128"})

	t.Run("lock-out cannot be aimed", func(t *testing.T) { testLockoutNotAimed(t, st, agg) })
	t.Run("revocation reaches every service", func(t *testing.T) { testRevocation(t, st, agg) })
	t.Run("email links open pages", func(t *testing.T) { testEmailPages(t, st, agg) })
}

// testEmailPages is case 10: the emails link to pages with the token in
// the fragment only; a GET of a page (a person's, a mail scanner's, even
// with the token in the query as links used to carry it) changes nothing;
// posting the token, as the page's button and form do, completes the
// verification and the reset.
func testEmailPages(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	email, password := fmt.Sprintf("pages-%d@example.com", time.Now().UnixNano()), "correct horse battery"
	c.do("POST", "/v1/signup", map[string]string{"email": email, "password": password, "display_name": "Pages", "role": "buyer"}).want(t, http.StatusAccepted)
	link := st.verificationLink(t, email)
	page, token, ok := strings.Cut(link, "#token=")
	if !ok || strings.Contains(page, "?") || strings.Contains(page, token) {
		t.Fatalf("got link %q, want the page with the token in the fragment alone", link)
	}
	path := page[strings.Index(page, "/v1/"):]
	wantPage := func(path string) {
		t.Helper()
		r := c.do("GET", path, nil).want(t, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: got Content-Type %q, want text/html", path, ct)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: got Content-Security-Policy %q, want default-src 'none' and nothing unsafe", path, csp)
		}
		if b := string(r.body); strings.Contains(b, "http://") || strings.Contains(b, "https://") || strings.Contains(b, " src=") {
			t.Errorf("GET %s: the page loads something from elsewhere:\n%s", path, b)
		}
	}
	verified := func(password string) bool {
		t.Helper()
		var tp httpapi.TokenPair
		c.do("POST", "/v1/login", map[string]string{"email": email, "password": password}).want(t, http.StatusOK).decode(t, &tp)
		var acct httpapi.Account
		c.as(tp.AccessToken).do("GET", "/v1/accounts/me", nil).want(t, http.StatusOK).decode(t, &acct)
		return acct.VerifiedAt != nil
	}

	wantPage(path)
	wantPage(path + "?token=" + token) // what a scanner fetches of an old-style link
	if verified(password) {
		t.Fatal("a GET of the verification page verified the account")
	}
	c.do("POST", "/v1/verify-email", map[string]string{"token": token}).want(t, http.StatusOK)
	if !verified(password) {
		t.Fatal("posting the link's token did not verify the account")
	}

	c.do("POST", "/v1/password/forgot", map[string]string{"email": email}).want(t, http.StatusAccepted)
	var reset string
	eventually(t, 20*time.Second, "reset email to "+email, func() error {
		for _, m := range st.sink.Messages(mailsink.Filter{To: email}) {
			if l := resetLinkRE.FindString(m.Message.TextPart); l != "" {
				reset = l
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	page, token, _ = strings.Cut(reset, "#token=")
	wantPage(page[strings.Index(page, "/v1/"):])
	verified(password) // the GET changed nothing: the old password still works
	c.do("POST", "/v1/password/reset", map[string]string{"token": token, "new_password": password + "-new"}).want(t, http.StatusNoContent)
	verified(password + "-new")
}

// resetLinkRE finds the link of a password reset email.
var resetLinkRE = regexp.MustCompile(`https?://\S+/v1/password/reset#token=[A-Za-z0-9_-]+`)

// testLockoutNotAimed: 50 wrong logins from one client for a victim; the
// victim logs in from another client at once, and the stranger's client
// is locked (even with the right password).
func testLockoutNotAimed(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	victim := st.newShopper(t, c, "buyer")
	from := func(client, password string) *response {
		return c.do("POST", "/v1/login", map[string]string{"email": victim.email, "password": password}, "X-Forwarded-For", client)
	}
	var locked int
	for i := range 50 {
		switch r := from("203.0.113.66", fmt.Sprintf("a-wrong-guess-%d", i)); r.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			locked++
		default:
			t.Fatalf("guess %d: got %d, want 401 or 429: %s", i, r.status, r.body)
		}
	}
	if locked == 0 {
		t.Error("50 wrong logins from one client were never locked out")
	}
	from("198.51.100.7", victim.password).want(t, http.StatusOK)
	r := from("203.0.113.66", victim.password)
	r.problem(t, http.StatusTooManyRequests, "too-many-requests")
	if r.header.Get("Retry-After") == "" {
		t.Error("the stranger's 429 has no Retry-After")
	}
	// Naming another client itself does not get the stranger a fresh
	// count: auth hears the address the aggregator saw, not the client.
	c.do("POST", "/v1/login", map[string]string{"email": victim.email, "password": "one-more-guess"},
		"X-Forwarded-For", "203.0.113.66", "X-Client-Address", "198.51.100.8").want(t, http.StatusTooManyRequests)
}

// testRevocation: after logout, a password change and an admin disabling
// the account, the old access token is refused (401 problem+json) by the
// aggregator and directly by orders within the bound, and a fresh token
// works at once.
func testRevocation(t *testing.T, st *stack, agg *aggregator) {
	c := newClient(t, agg.URL)
	sh := st.newShopper(t, c, "buyer")
	login := func() httpapi.TokenPair {
		t.Helper()
		var tp httpapi.TokenPair
		c.do("POST", "/v1/login", map[string]string{"email": sh.email, "password": sh.password}).want(t, http.StatusOK).decode(t, &tp)
		return tp
	}
	works := func(token string) {
		t.Helper()
		c.as(token).do("GET", "/v1/orders", nil).want(t, http.StatusOK)
		if status := ordersDirect(t, st, token); status != http.StatusOK {
			t.Fatalf("orders' own API: got %d for a live token, want 200", status)
		}
	}
	refusedSoon := func(what, token string) {
		t.Helper()
		deadline := time.Now().Add(revocationBound)
		for {
			viaAgg := c.as(token).do("GET", "/v1/orders", nil)
			// The checkout is refused by the aggregator's own verifier,
			// before any service is called.
			own := c.as(token).do("POST", "/v1/checkout", map[string]any{}, "Idempotency-Key", "revoked-"+what)
			direct := ordersDirect(t, st, token)
			if viaAgg.status == http.StatusUnauthorized && own.status == http.StatusUnauthorized && direct == http.StatusUnauthorized {
				viaAgg.problem(t, http.StatusUnauthorized, "unauthenticated")
				if p := own.problem(t, http.StatusUnauthorized, "unauthenticated"); !strings.Contains(p.Detail, "revoked") {
					t.Errorf("%s: the aggregator's refusal says %q, want revoked", what, p.Detail)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s later the old token still gets %d (aggregator), %d (checkout), %d (orders directly)",
					what, revocationBound, viaAgg.status, own.status, direct)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	first := login()
	works(first.AccessToken)
	c.do("POST", "/v1/logout", map[string]string{"refresh_token": first.RefreshToken}).want(t, http.StatusNoContent)
	second := login() // right after, maybe in the same second as the logout
	refusedSoon("logout", first.AccessToken)
	works(second.AccessToken)

	other := login()
	c.as(second.AccessToken).do("POST", "/v1/password", map[string]string{
		"current_password": sh.password, "new_password": sh.password + "-2", "refresh_token": second.RefreshToken,
	}).want(t, http.StatusNoContent)
	sh.password += "-2"
	refusedSoon("password change", other.AccessToken)
	works(second.AccessToken) // the session that changed it is kept
	third := login()
	works(third.AccessToken)

	admin := st.newShopper(t, c, "buyer")
	promote(t, st, admin.id.String())
	var adminTokens httpapi.TokenPair
	c.do("POST", "/v1/login", map[string]string{"email": admin.email, "password": admin.password}).want(t, http.StatusOK).decode(t, &adminTokens)
	c.as(adminTokens.AccessToken).do("PATCH", "/v1/accounts/"+sh.id.String(), map[string]any{"disabled": true}).want(t, http.StatusOK)
	refusedSoon("disable", third.AccessToken)
	refusedSoon("disable", second.AccessToken)
}

// revocationBound is how soon a revoked token must be refused: the
// verifiers' poll interval (AUTH_REVOCATIONS_POLL_INTERVAL, 2s) plus one
// request, with room for a loaded test machine.
const revocationBound = 8 * time.Second

// ordersDirect calls orders' own API with token, as a service inside the
// cluster would be called, and returns the status.
func ordersDirect(t *testing.T, st *stack, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", st.orders.URL+"/v1/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("orders' 401: got Content-Type %q, want application/problem+json", ct)
		}
	}
	return resp.StatusCode
}

// promote makes an account an admin in auth's database: the stack has no
// bootstrap admin, and admins are made by admins.
func promote(t *testing.T, st *stack, id string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, st.auth.Env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE accounts SET role = 'admin' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}
