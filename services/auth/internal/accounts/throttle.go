package accounts

import (
	"crypto/sha256"
	"time"
)

// The brute-force rule: MaxFailures failed logins within FailureWindow lock
// the address for LockBase, doubling with each lock-out up to LockMax.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
	LockBase      = time.Minute
	LockMax       = time.Hour
)

// throttle is the login_throttle row of one address.
type throttle struct {
	Failures    int
	WindowStart time.Time
	Lockouts    int
	LockedUntil *time.Time
}

// throttleKey is what an address is counted under: its SHA-256, so the
// table never holds a stranger's address (or a password typed into the
// email field).
func throttleKey(email string) []byte {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return sum[:]
}

// reserve counts an attempt before its password is checked, so that
// concurrent guesses cannot outrun the limit. It returns how long to wait
// when the attempt is refused, or 0 when it may proceed.
func (t *throttle) reserve(now time.Time) time.Duration {
	if t.LockedUntil != nil && now.Before(*t.LockedUntil) {
		return t.LockedUntil.Sub(now)
	}
	if now.Sub(t.WindowStart) >= FailureWindow {
		t.Failures, t.WindowStart = 0, now
	}
	if t.Failures >= MaxFailures {
		// The limit is reached by attempts still being checked; the one
		// that fails sets the lock. Refuse until then.
		return time.Second
	}
	t.Failures++
	return 0
}

// fail records that a reserved attempt failed, locking the address when it
// was the last one the window allows.
func (t *throttle) fail(now time.Time) {
	if t.Failures < MaxFailures || (t.LockedUntil != nil && now.Before(*t.LockedUntil)) {
		return
	}
	until := now.Add(lockPeriod(t.Lockouts))
	t.Lockouts++
	t.LockedUntil = &until
	t.Failures, t.WindowStart = 0, now
}

// lockPeriod is the length of the lock-out that follows n earlier ones.
func lockPeriod(n int) time.Duration {
	d := LockBase
	for i := 0; i < n && d < LockMax; i++ {
		d *= 2
	}
	return min(d, LockMax)
}
