// Package porttest gives tests a loopback port for a server they start
// later by address (a service's HTTP_ADDR), for the test binaries of every
// module.
//
// A port found by listening on :0 and closing is an ephemeral port: the
// kernel may hand it to the next client socket or httptest server of a
// test running in parallel before the service binds it ("address already
// in use"). Free picks below the ephemeral range instead, which the kernel
// never hands out by itself, and never gives the same port twice in one
// process.
package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// The range Free picks from: below Linux's ephemeral ports (32768–60999),
// Nomad's dynamic ports on the dev cluster (20000–32000) and the e2e
// cluster's (13000–13999).
const (
	low  = 14000
	high = 20000
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns a port of 127.0.0.1 that nothing listens on, for a server
// the test starts next.
func Free(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := low + rand.IntN(high-low)
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // another process's
		}
		l.Close()
		given[p] = true
		return p
	}
	t.Fatalf("porttest: no free port in %d-%d", low, high)
	return 0
}
