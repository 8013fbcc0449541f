package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Params are the argon2id cost parameters of a password hash.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
}

// MinParams is OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane):
// configuration may raise it, never lower it.
var MinParams = Params{Memory: 19456, Iterations: 2, Parallelism: 1}

// AtLeast reports whether every parameter of p is at or above min's.
func (p Params) AtLeast(min Params) bool {
	return p.Memory >= min.Memory && p.Iterations >= min.Iterations && p.Parallelism >= min.Parallelism
}

const (
	saltLen = 16
	keyLen  = 32
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// hashPassword returns the PHC string of password under p:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash. The parameters travel with the hash,
// so raising them later leaves old hashes verifiable.
func hashPassword(password string, p Params) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand documents it)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// ParseHash reads a PHC argon2id string into its parameters, salt and key.
func ParseHash(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errors.New("not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Parallelism); err != nil {
		return Params{}, nil, nil, fmt.Errorf("malformed argon2 parameters %q", parts[3])
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return Params{}, nil, nil, errors.New("malformed argon2 salt")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return Params{}, nil, nil, errors.New("malformed argon2 hash")
	}
	return p, salt, key, nil
}

// checkPassword reports whether password matches the PHC string encoded,
// comparing in constant time. A malformed hash is an error, not a mismatch:
// it is a bug or a corrupted row.
func checkPassword(encoded, password string) (bool, error) {
	p, salt, key, err := ParseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// gate bounds the work in flight; a request waits for a slot at most
// wait, then that one request is answered busy. Two are used (issue 12):
// one bounds the argon2id computations, each of which takes the configured
// memory (19 MiB by default) for its whole duration — without it forty
// parallel logins or resets took auth past its memory and made login
// answer 503 for everyone; the other bounds the requests that hash, with
// their database work, so that however many arrive the admitted ones still
// answer within the aggregator's call timeout, which would otherwise count
// them against auth and open its circuit for everyone.
//
// A request passes both gates on one budget (see credential): it starts
// its hash within wait of arriving, or is answered busy. Two budgets, one
// per gate, let an admitted request queue twice as long, and under a storm
// on two cores that, with its hash, went past the aggregator's 3 s.
type gate struct {
	slots chan struct{}
	wait  time.Duration
}

func newGate(n int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, n), wait: wait}
}

// errBusy is the answer of a request that found no slot in time: a
// 503 for it alone (problem type …/busy) with Retry-After, which the
// aggregator passes on without counting it against auth.
var errBusy = &apierr.Error{
	Kind: apierr.Unavailable, Code: "busy", RetryAfter: time.Second,
	Err: errors.New("too many passwords are being checked right now; retry in a second"),
}

// queueBudget is the context key of the time by which a request admitted
// by credential must have its argon2id slot.
type queueBudget struct{}

// enter takes a slot, or fails with errBusy once g.wait has passed, or the
// request's queue budget ends if that is sooner; leave gives it back.
func (g *gate) enter(ctx context.Context) (leave func(), err error) {
	leave = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	default:
	}
	wait := g.wait
	if by, ok := ctx.Value(queueBudget{}).(time.Time); ok {
		wait = min(wait, time.Until(by))
	}
	if wait <= 0 {
		return nil, errBusy
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	case <-timer.C:
		return nil, errBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// credential admits a request that checks or sets a password; leave ends
// it. The context it returns carries the request's queue budget, which
// its hash or check spends the rest of.
func (s *Service) credential(ctx context.Context) (admitted context.Context, leave func(), err error) {
	ctx = context.WithValue(ctx, queueBudget{}, time.Now().Add(s.door.wait))
	leave, err = s.door.enter(ctx)
	return ctx, leave, err
}

// hash hashes a new password with the configured cost, in a slot.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	leave, err := s.gate.enter(ctx)
	if err != nil {
		return "", err
	}
	defer leave()
	return hashPassword(password, s.params), nil
}

// check is checkPassword in a slot.
func (s *Service) check(ctx context.Context, encoded, password string) (bool, error) {
	leave, err := s.gate.enter(ctx)
	if err != nil {
		return false, err
	}
	defer leave()
	return checkPassword(encoded, password)
}
