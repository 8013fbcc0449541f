package accounts

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	p := Params{Memory: MinParams.Memory, Iterations: 3, Parallelism: 1}
	h1, h2 := hashPassword("s3cret password", p), hashPassword("s3cret password", p)
	if h1 == h2 {
		t.Error("two hashes of one password are equal, want distinct salts")
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=3,p=1$") {
		t.Errorf("got %q, want a PHC string carrying m=19456,t=3,p=1", h1)
	}
	got, salt, key, err := ParseHash(h1)
	if err != nil || got != p || len(salt) != saltLen || len(key) != keyLen {
		t.Fatalf("ParseHash: got %+v, %d-byte salt, %d-byte key, %v; want %+v, 16, 32", got, len(salt), len(key), err, p)
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"s3cret password", true},
		{"s3cret passwore", false},
		{"", false},
	}
	for _, tt := range tests {
		if ok, err := checkPassword(h1, tt.password); ok != tt.want || err != nil {
			t.Errorf("checkPassword(%q): got %v, %v, want %v", tt.password, ok, err, tt.want)
		}
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2i$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=x$c2FsdA$a2V5"} {
		if _, err := checkPassword(bad, "x"); err == nil {
			t.Errorf("checkPassword on %q: got no error, want a malformed-hash error", bad)
		}
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var th throttle
	th.WindowStart = t0
	for i := range PairMaxFailures {
		if wait := th.reserve(t0, PairMaxFailures); wait != 0 {
			t.Fatalf("attempt %d: got wait %v, want 0", i+1, wait)
		}
		th.fail(t0, PairMaxFailures)
	}
	if wait := th.reserve(t0.Add(time.Second), PairMaxFailures); wait != LockBase-time.Second {
		t.Errorf("after %d failures: got wait %v, want %v", PairMaxFailures, wait, LockBase-time.Second)
	}

	// Attempts in flight count: the sixth concurrent one is refused before
	// the fifth has failed.
	var busy throttle
	busy.WindowStart = t0
	for range PairMaxFailures {
		busy.reserve(t0, PairMaxFailures)
	}
	if wait := busy.reserve(t0, PairMaxFailures); wait == 0 {
		t.Error("a sixth attempt while five are being checked was allowed")
	}

	// Failures older than the window are forgotten.
	var slow throttle
	slow.WindowStart = t0
	for i := range 2 * PairMaxFailures {
		now := t0.Add(time.Duration(i) * 4 * time.Minute)
		if wait := slow.reserve(now, PairMaxFailures); wait != 0 {
			t.Fatalf("slow attempt %d: got wait %v, want 0", i+1, wait)
		}
		slow.fail(now, PairMaxFailures)
	}
}

// TestThrottleCount is the per-client and per-address counting: failures
// are counted as they happen, the limit locks once per lock period, and a
// row past its retention reads as new.
func TestThrottleCount(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	th := throttle{WindowStart: t0}
	for i := range AccountMaxFailures - 1 {
		if th.count(t0, AccountMaxFailures) {
			t.Fatalf("failure %d locked, want only the %dth", i+1, AccountMaxFailures)
		}
	}
	if !th.count(t0, AccountMaxFailures) {
		t.Fatalf("failure %d did not lock", AccountMaxFailures)
	}
	for range 2 * AccountMaxFailures {
		if th.count(t0.Add(time.Second), AccountMaxFailures) {
			t.Fatal("locked again while locked: the owner would be emailed per attempt")
		}
	}
	if got := th.locked(t0.Add(time.Second)); got != LockBase-time.Second {
		t.Errorf("locked: got %v, want %v", got, LockBase-time.Second)
	}
	th.ExpiresAt = th.retainUntil()
	if want := t0.Add(FailureWindow + throttleRetention); !th.ExpiresAt.Equal(want) {
		t.Errorf("retained until %v, want %v", th.ExpiresAt, want)
	}
	th.expire(th.ExpiresAt)
	if th.Failures != 0 || th.Lockouts != 0 || th.LockedUntil != nil {
		t.Errorf("after its retention the row still counts: %+v", th)
	}
}

func TestLockPeriod(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for n, w := range want {
		if got := lockPeriod(n); got != w {
			t.Errorf("lockPeriod(%d): got %v, want %v", n, got, w)
		}
	}
	if got := lockPeriod(1 << 30); got != LockMax {
		t.Errorf("lockPeriod(huge): got %v, want %v", got, LockMax)
	}
}

func TestCheckers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(string) string
		in    string
		ok    bool
	}{
		{"email", CheckEmail, "ada@example.com", true},
		{"email", CheckEmail, "ada.lovelace+shop@mail.example.co.uk", true},
		{"email", CheckEmail, "Ada <ada@example.com>", false},
		{"email", CheckEmail, "ada@example", false},
		{"email", CheckEmail, "ada", false},
		{"email", CheckEmail, strings.Repeat("a", 250) + "@x.io", false},
		{"password", CheckPassword, "12345678", true},
		{"password", CheckPassword, "ééééééé", false}, // 7 characters, 14 bytes
		{"password", CheckPassword, "éééééééé", true}, // 8 characters
		{"password", CheckPassword, strings.Repeat("p", 128), true},
		{"password", CheckPassword, strings.Repeat("p", 129), false},
		{"display name", CheckDisplayName, "Ada Lovelace", true},
		{"display name", CheckDisplayName, "", false},
		{"display name", CheckDisplayName, "tab\there", false},
		{"display name", CheckDisplayName, strings.Repeat("n", 100), true},
		{"display name", CheckDisplayName, strings.Repeat("n", 101), false},
	}
	for _, tt := range tests {
		if got := tt.check(tt.in); (got == "") != tt.ok {
			t.Errorf("%s %q: got %q, want ok=%v", tt.name, tt.in, got, tt.ok)
		}
	}
	if got := NormalizeEmail("  Ada@Example.COM "); got != "ada@example.com" {
		t.Errorf("NormalizeEmail: got %q, want ada@example.com", got)
	}
}

// TestUnknownEmailChecksAHashOfTheSameCost: a login naming no account
// verifies the password against a dummy hash made with the configured
// parameters, so it does the same work as a wrong password. (Work, not
// time, is asserted here; BenchmarkCheckPassword measures the time.)
func TestUnknownEmailChecksAHashOfTheSameCost(t *testing.T) {
	t.Parallel()
	cfg := Config{Argon2MemoryKiB: MinParams.Memory + 1024, Argon2Iterations: 3, Argon2Parallelism: 1}
	svc := NewService(nil, cfg, nil, nil, hclog.NewNullLogger())
	got, _, _, err := ParseHash(svc.dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := cfg.argon2(); got != want {
		t.Fatalf("dummy hash made with %+v, want the configured %+v", got, want)
	}
	if ok, err := checkPassword(svc.dummyHash, "anything"); ok || err != nil {
		t.Fatalf("got (%v, %v) checking a password against the dummy, want (false, nil)", ok, err)
	}
}

// BenchmarkCheckPassword is what a login costs at OWASP's minimum argon2id
// parameters, known or unknown address alike. Target: 15–60 ms per check on
// one core (slow enough against guessing, fast enough for a login).
func BenchmarkCheckPassword(b *testing.B) {
	h := hashPassword("correct horse battery staple", MinParams)
	for b.Loop() {
		_, _ = checkPassword(h, "wrong horse battery staple")
	}
}

// TestOneQueueBudgetForBothGates: a request that waited at the door for
// most of its budget has only the rest of it for an argon2id slot, not a
// second budget (two let an admitted request of a storm answer after the
// aggregator's call timeout, which opened its circuit for accounts).
func TestOneQueueBudgetForBothGates(t *testing.T) {
	t.Parallel()
	const budget = 2 * time.Second
	s := &Service{door: newGate(1, budget), gate: newGate(1, budget)}
	holdGate, err := s.gate.enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holdGate()
	holdDoor, err := s.door.enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(budget*3/4, holdDoor)

	began := time.Now()
	ctx, leave, err := s.credential(t.Context())
	if err != nil {
		t.Fatalf("credential: %v, want a place once the door's holder leaves", err)
	}
	defer leave()
	if _, err := s.check(ctx, "", ""); err != errBusy {
		t.Fatalf("check with the argon2id slot held: %v, want errBusy", err)
	}
	if took := time.Since(began); took > budget+budget/4 {
		t.Errorf("busy after %v in all, want about the one budget of %v", took.Round(time.Millisecond), budget)
	}
}
