package main

import (
	"math"
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
