package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestCost: the medians of the runs with a feature (two: their mean) are
// compared with those without, each as shop/reference of its own run; a row whose shop
// figure met the rate limiter says so.
func TestCost(t *testing.T) {
	t.Parallel()
	row := func(prof string, n int, ratio, p50 float64, errs map[string]int) Row {
		return Row{Profile: prof, Clients: n, TputRatio: ratio, Shop: Level{P50: p50, Errors: errs}}
	}
	off := &Report{Rows: []Row{row("browse", 1, 0.50, 4.0, nil), row("checkout", 16, 0.20, 30, map[string]int{"429": 3})}}
	on := []*Report{
		{Rows: []Row{row("browse", 1, 0.45, 4.4, nil), row("checkout", 16, 0.19, 31, nil)}},
		{Rows: []Row{row("browse", 1, 0.47, 4.6, nil), row("checkout", 16, 0.21, 29, nil)}},
	}
	mc := cost("the mesh", []*Report{off}, on)
	if len(mc.Rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(mc.Rows))
	}
	b := mc.Rows[0]
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if !near(b.OnRatio, 0.46) || !near(b.Cost, 0.08) || !near(b.OnP50, 4.5) || !near(b.P50Cost, 1-4.0/4.5) || b.Limited {
		t.Errorf("browse: %+v, want with-mesh ratio 0.46, cost 0.08, p50 4.5 ms, not limited", b)
	}
	if c := mc.Rows[1]; !c.Limited || !near(c.Cost, 0) || !near(c.Spread, 0.1) {
		t.Errorf("checkout: %+v, want rate-limited, no cost, a spread of 0.02/0.2", c)
	}
	if got := median([]float64{3, 1, 100}); got != 3 {
		t.Errorf("median of 3, 1, 100: %v, want 3", got)
	}
}

// TestHops: rounds of the hop benchmarks give each hop's medians; an
// operation's share is its edge hops and inner calls (its log lines but
// the aggregator's) times each hop's added time, against its p50 at one
// client and its throughput at the top level with the mesh.
func TestHops(t *testing.T) {
	t.Parallel()
	// Two rounds; only the edge's sequential mesh figure differs (150
	// then 170 µs), and a benchmark of no hop is left out.
	round := func(edgeMeshSeq int) string {
		return fmt.Sprintf(`BenchmarkEdgeHop/sequential/plain-2   2000  100000 ns/op
BenchmarkEdgeHop/sequential/mesh-2    2000  %d ns/op
BenchmarkEdgeHop/parallel/plain-2     2000   60000 ns/op
BenchmarkEdgeHop/parallel/mesh-2      2000   90000 ns/op
BenchmarkCall/sequential/plain-2      2000   50000 ns/op
BenchmarkCall/sequential/mesh-2       2000   60000 ns/op
BenchmarkCall/parallel/plain-2        2000   30000 ns/op
BenchmarkCall/parallel/mesh-2         2000   35000 ns/op
PASS
`, edgeMeshSeq*1000)
	}
	out := "goos: linux\n" + round(150) + round(170) + "BenchmarkOther/sequential/plain-2     2000       1 ns/op\n"
	hops, err := readHops(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if len(hops) != 2 || hops[0].Kind != "edge" || hops[0].Rounds != 2 || !near(hops[0].MeshSeq, 160) || hops[1].Kind != "call" {
		t.Fatalf("hops: %+v, want edge (2 rounds, mesh sequential 160 µs, the median) then call", hops)
	}
	row := func(prof string, n int, p50, tput float64) Row {
		return Row{Profile: prof, Clients: n, Shop: Level{P50: p50, Throughput: tput}}
	}
	on := []*Report{{Rows: []Row{row("checkout", 1, 50, 20), row("checkout", 16, 800, 19)}}}
	ops := opCosts(hops, map[string]map[string]int{"checkout": {"edge": 2, "aggregator": 2, "orders": 5, "payment": 3}}, on)
	if len(ops) != 1 {
		t.Fatalf("ops: %+v", ops)
	}
	o := ops[0]
	// 2 edge hops × 60 µs + 8 calls × 10 µs; of machine time (2 cores),
	// 2 × 2 × 30 + 8 × 2 × 5; the saturated shop's 19/s spread on 2 cores.
	if o.Edge != 2 || o.Inner != 8 || !near(o.AddedSeq, 200) || !near(o.LatencyCost, 0.2/50) ||
		!near(o.AddedPar, 200) || o.TopClients != 16 || !near(o.ThroughputCost, 200e-6*19/2) {
		t.Errorf("checkout: %+v", o)
	}
	if _, err := readHops(strings.NewReader("BenchmarkCall/sequential/plain-2 10 5 ns/op\n")); err == nil {
		t.Error("an incomplete round was read without an error")
	}
}
