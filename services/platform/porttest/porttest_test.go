package porttest

import (
	"fmt"
	"net"
	"testing"
)

// Free never gives a port twice, never an ephemeral one, and a port it
// gives can be bound.
func TestFree(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Free(t)
		if seen[p] || p < low || p >= high {
			t.Fatalf("Free gave %d (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
	p := Free(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("bind the port Free gave: %v", err)
	}
	l.Close()
}
