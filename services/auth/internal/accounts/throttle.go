package accounts

import (
	"crypto/sha256"
	"time"
)

// The lock-out of logins, built so that a stranger cannot aim it at an
// owner (issue 12: five wrong passwords by anyone used to lock the owner
// out). Failures are counted three ways:
//
//   - per (address, client): PairMaxFailures within FailureWindow lock that
//     client out of that address for LockBase, doubling with each lock-out
//     up to LockMax. This is what stops a guesser, and it locks the guesser
//     alone.
//   - per client, whatever the address: ClientMaxFailures lock the client
//     out of every address (one client spraying many accounts).
//   - per address, every client together: AccountMaxFailures raise the
//     address's alarm for a lock period. Its owner is emailed (once per
//     period) and, while it lasts, the clients that already failed on the
//     address are refused; a client without failures on it, such as the
//     owner's own device, still logs in. One client cannot raise it alone:
//     its pair locks let it fail at most 25 times in a window.
//
// A client is the address the aggregator saw (X-Client-Address); calls
// without one (direct internal calls) are one client, UnknownClient.
const (
	PairMaxFailures    = 5
	ClientMaxFailures  = 20
	AccountMaxFailures = 50
	FailureWindow      = 15 * time.Minute
	LockBase           = time.Minute
	LockMax            = time.Hour
	// throttleRetention is how long a row outlives its window and its
	// lock before it is swept: the doubling forgets a client after a quiet
	// hour, and the table does not grow with every address ever tried.
	throttleRetention = LockMax
)

// UnknownClient is the client of calls that do not say who the client is.
const UnknownClient = "unknown"

// throttle is a login_throttle row: the failures of one key.
type throttle struct {
	Failures    int
	WindowStart time.Time
	Lockouts    int
	LockedUntil *time.Time
	ExpiresAt   time.Time
}

// throttleKeys are the rows an attempt is counted under. Each is a
// SHA-256, so the table never holds a stranger's address (or a password
// typed into the email field), nor a client's address.
type throttleKeys struct {
	pair, client, account []byte
}

func keysFor(email, client string) throttleKeys {
	email = NormalizeEmail(email)
	return throttleKeys{
		pair:    digest("pair", email, client),
		client:  digest("client", client),
		account: accountKey(email),
	}
}

// accountKey names an address's rows (its own and its pairs'), so that a
// password reset can lift every client's lock on it.
func accountKey(email string) []byte { return digest("account", NormalizeEmail(email)) }

// digest is the SHA-256 of parts, each ended by a NUL so that no two lists
// of parts collide.
func digest(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// expire forgets a row whose retention has passed: expiry on read, so that
// a row the sweep has not reached yet counts for nothing.
func (t *throttle) expire(now time.Time) {
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		*t = throttle{WindowStart: now}
	}
}

// locked returns how long the key stays locked (0: it is not).
func (t *throttle) locked(now time.Time) time.Duration {
	if t.LockedUntil != nil && now.Before(*t.LockedUntil) {
		return t.LockedUntil.Sub(now)
	}
	return 0
}

// reserve counts an attempt before its password is checked, so that
// concurrent guesses cannot outrun the limit. It returns how long to wait
// when the attempt is refused, or 0 when it may proceed.
func (t *throttle) reserve(now time.Time, limit int) time.Duration {
	if wait := t.locked(now); wait > 0 {
		return wait
	}
	if now.Sub(t.WindowStart) >= FailureWindow {
		t.Failures, t.WindowStart = 0, now
	}
	if t.Failures >= limit {
		// The limit is reached by attempts still being checked; the one
		// that fails sets the lock. Refuse until then.
		return time.Second
	}
	t.Failures++
	return 0
}

// unreserve gives back a reservation whose password was never checked.
func (t *throttle) unreserve() {
	if t.Failures > 0 {
		t.Failures--
	}
}

// fail records that a reserved attempt failed, locking the key when it was
// the last one the window allows.
func (t *throttle) fail(now time.Time, limit int) {
	if t.Failures < limit || t.locked(now) > 0 {
		return
	}
	t.lock(now)
}

// count records a failure that was not reserved (the per-client and
// per-address counters), and reports whether it locked the key.
func (t *throttle) count(now time.Time, limit int) bool {
	if now.Sub(t.WindowStart) >= FailureWindow {
		t.Failures, t.WindowStart = 0, now
	}
	t.Failures++
	if t.Failures < limit || t.locked(now) > 0 {
		return false
	}
	t.lock(now)
	return true
}

func (t *throttle) lock(now time.Time) {
	until := now.Add(lockPeriod(t.Lockouts))
	t.Lockouts++
	t.LockedUntil = &until
	t.Failures, t.WindowStart = 0, now
}

// retainUntil is when the row may be swept.
func (t *throttle) retainUntil() time.Time {
	end := t.WindowStart.Add(FailureWindow)
	if t.LockedUntil != nil && t.LockedUntil.After(end) {
		end = *t.LockedUntil
	}
	return end.Add(throttleRetention)
}

// lockPeriod is the length of the lock-out that follows n earlier ones.
func lockPeriod(n int) time.Duration {
	d := LockBase
	for i := 0; i < n && d < LockMax; i++ {
		d *= 2
	}
	return min(d, LockMax)
}
