package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/mailsink"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// The abuse cases of issue 12 that auth answers alone: bounded argon2id
// (2), a lock-out a stranger cannot aim (3), per-address email quotas (7)
// and the revocation feed (9).

// deployedSettings is where Terraform keeps auth's settings for its job
// (nomad/service.nomad.hcl): the auth block of terraform/modules/shop's
// services.tf.
const deployedSettings = "../../terraform/modules/shop/services.tf"

// authSettings returns the auth block of deployedSettings.
func authSettings(t *testing.T) string {
	t.Helper()
	spec, err := os.ReadFile(deployedSettings)
	if err != nil {
		t.Fatal(err)
	}
	s := string(spec)
	start := strings.Index(s, "\n    auth = {")
	end := strings.Index(s, "\n    inventory = {")
	if start < 0 || end < start {
		t.Fatalf("%s: no auth block before inventory's", deployedSettings)
	}
	return s[start:end]
}

// nomadLimits reads the auth task's memory limit (MiB) and GOMEMLIMIT
// (bytes) from its deployed settings, so that the test holds the service
// to the numbers it is deployed with.
func nomadLimits(t *testing.T) (limitMiB int, goMemLimit int64) {
	t.Helper()
	task := authSettings(t)
	m := regexp.MustCompile(`(?m)^\s*memory\s*=\s*(\d+)`).FindStringSubmatch(task)
	g := regexp.MustCompile(`GOMEMLIMIT\s*=\s*"(\d+)MiB"`).FindStringSubmatch(task)
	if m == nil || g == nil {
		t.Fatalf(`%s: no "memory = N" or GOMEMLIMIT = "NMiB" in auth's settings`, deployedSettings)
	}
	limitMiB, _ = strconv.Atoi(m[1])
	mib, _ := strconv.Atoi(g[1])
	return limitMiB, int64(mib) << 20
}

// wantBusy checks that a 503 is the busy answer of that request alone:
// type …/busy, with Retry-After.
func wantBusy(t *testing.T, what string, r response) {
	t.Helper()
	if p := r.Problem(t); !strings.HasSuffix(p.Type, "/busy") || r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: got 503 type %q, Retry-After %q; want …/busy with Retry-After", what, p.Type, r.Header.Get("Retry-After"))
	}
}

// nomadEnv reads one environment variable of the auth task from its
// deployed settings, or else from the job every service shares.
func nomadEnv(t *testing.T, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*"([^"]*)"`)
	if m := re.FindStringSubmatch(authSettings(t)); m != nil {
		return m[1]
	}
	job, err := os.ReadFile("../../nomad/service.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	m := re.FindSubmatch(job)
	if m == nil {
		t.Fatalf("no %s in auth's settings (%s) nor in nomad/service.nomad.hcl", name, deployedSettings)
	}
	return string(m[1])
}

// aggregatorCallTimeout is how long the aggregator waits for one call to
// auth (its AGGREGATOR_CALL_TIMEOUT default): an answer later than that
// is a timeout there, counted against auth by its circuit breaker.
func aggregatorCallTimeout(t *testing.T) time.Duration {
	t.Helper()
	src, err := os.ReadFile("../../aggregator/main.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`env:"AGGREGATOR_CALL_TIMEOUT" default:"([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("aggregator/main.go: no AGGREGATOR_CALL_TIMEOUT default")
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// peakMemory samples the Go runtime's memory (mapped minus released to the
// OS: its resident part, which the race detector's shadow memory does not
// inflate) until stop is closed, and returns the peak.
func peakMemory(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	go func() {
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(samples)
			peak = max(peak, samples[0].Value.Uint64()-samples[1].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestHashingIsBounded is case 2: 200 parallel garbage resets and 200
// parallel wrong logins. Every answer is 400, 401, 429 or a 503 busy with
// Retry-After for that request alone; the resets never wait for a hash (all
// 400 on their token); the memory stays under the Nomad limit; a correct
// login right after succeeds.
//
// Not parallel: it measures the process's memory, so no other test may run
// beside it; the memory limit is the jobspec's GOMEMLIMIT, as deployed.
func TestHashingIsBounded(t *testing.T) {
	limitMiB, goMemLimit := nomadLimits(t)
	budget := aggregatorCallTimeout(t)
	// The deployed bounds, as terraform/modules/shop/services.tf sets them.
	var deployed []servicetest.Option
	for _, k := range []string{"DATABASE_MAX_CONNS", "AUTH_HASH_CONCURRENCY", "AUTH_CREDENTIAL_CONCURRENCY"} {
		deployed = append(deployed, withEnv(k, nomadEnv(t, k)))
	}
	s := startService(t, deployed...)
	s.user(t, "flooded@example.com", "flooded-password", "buyer")

	defer debug.SetMemoryLimit(debug.SetMemoryLimit(goMemLimit))
	stop := make(chan struct{})
	peak := peakMemory(stop)

	const n = 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		counts  = map[string]int{}
		slowest time.Duration
		slowBy  = map[string]time.Duration{}
	)
	note := func(what string, r response, began time.Time) {
		took := time.Since(began)
		mu.Lock()
		defer mu.Unlock()
		counts[fmt.Sprintf("%s %d", what, r.Status)]++
		slowest = max(slowest, took)
		k := fmt.Sprintf("%s %d", what, r.Status)
		slowBy[k] = max(slowBy[k], took)
		if took >= budget {
			t.Errorf("%s answered %d after %v: the aggregator gives up on a call after %v and counts it against auth", what, r.Status, took.Round(time.Millisecond), budget)
		}
	}
	for i := range n {
		wg.Go(func() {
			began := time.Now()
			r := s.do(t, "POST", "/v1/password/reset", "", map[string]string{"token": fmt.Sprintf("garbage-token-%d", i), "new_password": "a-new-password"})
			note("reset", r, began)
			if r.Status != http.StatusBadRequest {
				t.Errorf("garbage reset: got %d, want 400 before any hashing or queueing: %s", r.Status, r.Body)
			} else if p := r.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "token" {
				t.Errorf("garbage reset: got %+v, want a token field error", p)
			}
		})
		wg.Go(func() {
			// Half on the real account from one client (its lock-out
			// kicks in), half on unknown addresses from as many clients.
			email, client := "flooded@example.com", "192.0.2.1"
			if i%2 == 1 {
				email, client = fmt.Sprintf("nobody-%d@example.com", i), fmt.Sprintf("192.0.2.%d", 2+i/2)
			}
			began := time.Now()
			r := s.doFrom(t, client, "POST", "/v1/login", "", map[string]string{"email": email, "password": "wrong-password"})
			note("login", r, began)
			switch r.Status {
			case http.StatusUnauthorized, http.StatusTooManyRequests:
			case http.StatusServiceUnavailable:
				wantBusy(t, "wrong login", r)
			default:
				t.Errorf("wrong login: got %d, want 401, 429 or 503 busy: %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	close(stop)
	got := <-peak
	t.Logf("slowest by answer: %v", slowBy)
	t.Logf("answers: %v; slowest %v (the aggregator's budget %v); peak memory %d MiB (limit %d MiB)", counts, slowest.Round(time.Millisecond), budget, got>>20, limitMiB)
	if got >= uint64(limitMiB)<<20 {
		t.Errorf("peak memory %d MiB, want under the Nomad limit of %d MiB", got>>20, limitMiB)
	}
	s.doFrom(t, "198.51.100.1", "POST", "/v1/login", "", map[string]string{"email": "flooded@example.com", "password": "flooded-password"}).Want(t, http.StatusOK)
}

// TestLockoutCannotBeAimed is case 3: a stranger's 50 wrong passwords for
// a victim lock the stranger's client, not the victim: the victim logs in
// from another client at once, and changes the password with their own
// session; the stranger is refused even with the right password. A client
// that fails on many addresses is locked out of all of them.
func TestLockoutCannotBeAimed(t *testing.T) {
	t.Parallel()
	s := startService(t)
	_, session := s.user(t, "victim@example.com", "victim-password", "buyer")
	const stranger, owner = "203.0.113.66", "198.51.100.7"
	login := func(client, email, password string) response {
		return s.doFrom(t, client, "POST", "/v1/login", "", map[string]string{"email": email, "password": password})
	}

	var unauthorized, locked int
	for i := range 50 {
		switch r := login(stranger, "victim@example.com", "a-guess-"+strconv.Itoa(i)); r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			locked++
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("guess %d: got %d, want 401 or 429: %s", i, r.Status, r.Body)
		}
	}
	if unauthorized != 5 || locked != 45 {
		t.Errorf("got %d 401s then %d 429s, want 5 then 45", unauthorized, locked)
	}
	login(stranger, "victim@example.com", "victim-password").Want(t, http.StatusTooManyRequests)

	login(owner, "victim@example.com", "victim-password").Want(t, http.StatusOK)
	s.doFrom(t, owner, "POST", "/v1/password", session.AccessToken, map[string]string{
		"current_password": "victim-password", "new_password": "victim-password-2", "refresh_token": session.RefreshToken,
	}).Want(t, http.StatusNoContent)
	// Direct calls (no X-Client-Address) are one client of their own.
	s.login(t, "victim@example.com", "victim-password-2")

	// The stranger sprays other addresses: after 20 failures in all
	// (5 on the victim and 5 on each of three more), every address is
	// closed to it, even one it never tried; others are unaffected.
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		for range 5 {
			login(stranger, email, "a-guess").Want(t, http.StatusUnauthorized)
		}
	}
	login(stranger, "fresh@example.com", "a-guess").Want(t, http.StatusTooManyRequests)
	login(owner, "fresh@example.com", "a-guess").Want(t, http.StatusUnauthorized)
}

// TestAccountAlarm is case 3's per-address ceiling: failures from many
// clients together email the owner once per lock period; while the alarm
// is up the clients that failed are refused, and one without failures
// still logs in.
func TestAccountAlarm(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.user(t, "target@example.com", "target-password", "buyer")
	const subject = "Many failed logins to your Mylittleshopping account"
	for i := range 60 {
		client := fmt.Sprintf("10.1.%d.%d", i/200, i%200)
		r := s.doFrom(t, client, "POST", "/v1/login", "", map[string]string{"email": "target@example.com", "password": "a-guess"})
		want := http.StatusUnauthorized
		if r.Status != want {
			t.Fatalf("client %d's one guess: got %d, want %d: %s", i, r.Status, want, r.Body)
		}
	}
	// A client that failed once is refused while the alarm is up …
	s.doFrom(t, "10.1.0.0", "POST", "/v1/login", "", map[string]string{"email": "target@example.com", "password": "target-password"}).Want(t, http.StatusTooManyRequests)
	// … one that did not still logs in.
	s.doFrom(t, "198.51.100.9", "POST", "/v1/login", "", map[string]string{"email": "target@example.com", "password": "target-password"}).Want(t, http.StatusOK)
	s.emails(t, "target@example.com", subject, 1)
	waitOutboxSent(t, s)
	var alarms int
	for _, m := range s.mail.Sink.Messages(mailsink.Filter{To: "target@example.com"}) {
		if m.Message.Subject == subject {
			alarms++
		}
	}
	if alarms != 1 {
		t.Errorf("got %d alarm emails after 60 failures, want 1 (once per lock period, not per attempt)", alarms)
	}
}

// waitOutboxSent waits until the relay has handled every queued email.
func waitOutboxSent(t *testing.T, s *service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pending int
		if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d emails still queued after 10s", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestThrottleRowsExpire is case 3's clean-up: the rows of failed logins
// (one per address tried) are deleted once they can no longer matter, and
// an expired lock counts for nothing even before the sweep.
func TestThrottleRowsExpire(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("AUTH_SWEEP_INTERVAL", "100ms"))
	for i := range 5 {
		s.doFrom(t, "203.0.113.5", "POST", "/v1/login", "", map[string]string{"email": "ghost@example.com", "password": "guess-" + strconv.Itoa(i)}).Want(t, http.StatusUnauthorized)
	}
	for i := range 10 {
		s.doFrom(t, "203.0.113.6", "POST", "/v1/login", "", map[string]string{"email": fmt.Sprintf("ghost-%d@example.com", i), "password": "a-guess"}).Want(t, http.StatusUnauthorized)
	}
	count := func() int {
		var n int
		if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM login_throttle`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n == 0 {
		t.Fatal("no throttle rows after failed logins")
	}
	s.doFrom(t, "203.0.113.5", "POST", "/v1/login", "", map[string]string{"email": "ghost@example.com", "password": "a-guess"}).Want(t, http.StatusTooManyRequests)
	// Expiry on read: past its retention (time moved on), a lock is gone
	// before the sweep has deleted it.
	if _, err := s.DB.Exec(context.Background(), `UPDATE login_throttle SET expires_at = now() - interval '1 second', locked_until = now() + interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d throttle rows still there 10s after they expired", count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.doFrom(t, "203.0.113.5", "POST", "/v1/login", "", map[string]string{"email": "ghost@example.com", "password": "a-guess"}).Want(t, http.StatusUnauthorized)
}

// TestEmailQuota is case 7: 20 forgot-password requests, 20 resends and 20
// signups with a taken address each send at most the quota (3 an hour) of
// emails, and every answer is the same as for an unknown address.
func TestEmailQuota(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.user(t, "inbox@example.com", "inbox-password", "buyer")       // 1 email (verification)
	s.signup(t, "pending@example.com", "pending-password", "buyer") // 1 email (verification)
	s.user(t, "taken@example.com", "taken-password", "buyer")       // 1 email (verification)

	accepted := func(path string, body any) string {
		t.Helper()
		r := s.do(t, "POST", path, "", body).Want(t, http.StatusAccepted)
		return string(r.Body)
	}
	want := accepted("/v1/password/forgot", map[string]string{"email": "nobody@example.com"})
	for range 20 {
		for _, r := range []struct {
			path string
			body any
		}{
			{"/v1/password/forgot", map[string]string{"email": "inbox@example.com"}},
			{"/v1/verify-email/resend", map[string]string{"email": "pending@example.com"}},
			{"/v1/signup", map[string]string{"email": "taken@example.com", "password": "another-password", "display_name": "Dup", "role": "buyer"}},
		} {
			if got := accepted(r.path, r.body); got != want {
				t.Fatalf("%s: got %s, want the same answer as for an unknown address, %s", r.path, got, want)
			}
		}
	}
	waitOutboxSent(t, s)
	for _, address := range []string{"inbox@example.com", "pending@example.com", "taken@example.com"} {
		if got := len(s.mail.Sink.Messages(mailsink.Filter{To: address})); got != 3 {
			t.Errorf("%s got %d emails after 20 requests, want 3 (the quota, its first email included)", address, got)
		}
	}
}

// TestRevocationFeed is case 9 at auth: logout, a password change and
// disabling an account refuse the access tokens already issued (at auth's
// own API, which verifies tokens like every service) within the poll
// bound, and a login right after works, in the same second.
func TestRevocationFeed(t *testing.T) {
	t.Parallel()
	s := startService(t)
	admin := s.login(t, adminEmail, adminPassword)
	acc, first := s.user(t, "revoked@example.com", "revoked-password", "buyer")

	refusedSoon := func(what, token string) {
		t.Helper()
		deadline := time.Now().Add(revocationBound)
		for {
			r := s.do(t, "GET", "/v1/accounts/me", token, nil)
			if r.Status == http.StatusUnauthorized {
				if p := r.Problem(t); !strings.Contains(p.Detail, "revoked") {
					t.Errorf("%s: got %q, want a revoked token", what, p.Detail)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the old access token still works %s later (%d)", what, revocationBound, r.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	s.do(t, "POST", "/v1/logout", "", map[string]string{"refresh_token": first.RefreshToken}).Want(t, http.StatusNoContent)
	again := s.login(t, "revoked@example.com", "revoked-password") // same second, new session
	refusedSoon("logout", first.AccessToken)
	s.me(t, again.AccessToken)

	other := s.login(t, "revoked@example.com", "revoked-password")
	s.do(t, "POST", "/v1/password", again.AccessToken, map[string]string{
		"current_password": "revoked-password", "new_password": "revoked-password-2", "refresh_token": again.RefreshToken,
	}).Want(t, http.StatusNoContent)
	refusedSoon("password change", other.AccessToken)
	s.me(t, again.AccessToken) // the caller's own session is kept
	fresh := s.login(t, "revoked@example.com", "revoked-password-2")
	s.me(t, fresh.AccessToken)

	s.do(t, "PATCH", "/v1/accounts/"+acc.ID, admin.AccessToken, map[string]any{"disabled": true}).Want(t, http.StatusOK)
	refusedSoon("disable", fresh.AccessToken)
	refusedSoon("disable", again.AccessToken)

	var list struct {
		Revocations []map[string]any `json:"revocations"`
		NextSince   time.Time        `json:"next_since"`
	}
	s.do(t, "GET", "/internal/revocations", "", nil).Want(t, http.StatusOK).Decode(t, &list)
	if len(list.Revocations) < 3 || list.NextSince.IsZero() {
		t.Errorf("got %+v, want the logout's, the change's and the disable's revocations", list)
	}
	s.do(t, "GET", "/internal/revocations?since=yesterday", "", nil).Want(t, http.StatusBadRequest)
	var later struct {
		Revocations []map[string]any `json:"revocations"`
	}
	s.do(t, "GET", "/internal/revocations?since="+list.NextSince.Add(time.Hour).Format(time.RFC3339Nano), "", nil).Want(t, http.StatusOK).Decode(t, &later)
	if len(later.Revocations) != 0 {
		t.Errorf("got %d revocations after since, want none", len(later.Revocations))
	}
}

// revocationBound is how soon a revoked token must be refused: the
// verifiers' poll interval (AUTH_REVOCATIONS_POLL_INTERVAL, 2s) plus one
// request, with room for a loaded test machine.
const revocationBound = 8 * time.Second

// TestEmailLinksKeepTheToken is case 10 at auth: the verification and
// reset emails link to their pages with the token in the fragment only
// (never in a path or a query, which reach servers and their access logs),
// in the text and the HTML part alike; posting the token completes each.
func TestEmailLinksKeepTheToken(t *testing.T) {
	t.Parallel()
	s := startService(t)
	s.signup(t, "fragment@example.com", "fragment-password", "buyer")
	s.do(t, "POST", "/v1/password/forgot", "", map[string]string{"email": "fragment@example.com"}).Want(t, http.StatusAccepted)
	for _, tt := range []struct{ subject, page string }{
		{"Confirm your email address", s.Env["AUTH_VERIFY_URL"]},
		{"Reset your Mylittleshopping password", s.Env["AUTH_RESET_URL"]},
	} {
		m := s.emails(t, "fragment@example.com", tt.subject, 1)[0].Message
		link := linkRE.FindString(m.TextPart)
		token := tokenOf(t, link)
		if link != tt.page+"#token="+token {
			t.Errorf("%s: got link %q, want %s#token=…", tt.subject, link, tt.page)
		}
		if n := strings.Count(m.TextPart+m.HTMLPart, token); n != 2 || strings.Contains(m.TextPart+m.HTMLPart, "?token=") {
			t.Errorf("%s: the token appears %d times (want once per part, after #token=), or in a query", tt.subject, n)
		}
		if !strings.Contains(m.HTMLPart, `href="`+tt.page+`#token=`+token+`"`) {
			t.Errorf("%s: the HTML part does not link to the page with the token in the fragment:\n%s", tt.subject, m.HTMLPart)
		}
		if tt.page == s.Env["AUTH_VERIFY_URL"] {
			s.follow(t, link).Want(t, http.StatusOK)
		} else {
			s.do(t, "POST", "/v1/password/reset", "", map[string]string{"token": token, "new_password": "fragment-password-2"}).Want(t, http.StatusNoContent)
		}
	}
	s.login(t, "fragment@example.com", "fragment-password-2")
}
