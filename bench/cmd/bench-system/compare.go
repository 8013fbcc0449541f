package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Cost compares bench-system runs of the shop with a feature (the mesh,
// info-level logging) and without it (scripts/bench-compare.sh: with,
// without, with again): for each profile and level, the shop's throughput
// as a fraction of the reference measured in the same run (which cancels
// the machine's drift between runs), and its median latency, with the
// feature against without it. The two runs with it bracket the one
// without and are averaged.
type Cost struct {
	What string    `json:"what"`
	Rows []CostRow `json:"rows"`
}

// CostRow is one profile at one level.
type CostRow struct {
	Profile string `json:"profile"`
	Clients int    `json:"clients"`
	// OnRatio and OffRatio are shop/reference throughput with and without
	// the feature; Cost is 1 - OnRatio/OffRatio (the throughput it costs;
	// negative: none measured).
	OnRatio  float64 `json:"on_throughput_ratio"`
	OffRatio float64 `json:"off_throughput_ratio"`
	Cost     float64 `json:"throughput_cost"`
	// OnP50 and OffP50 are the shop's median latencies (ms), and
	// P50Cost 1 - OffP50/OnP50.
	OnP50   float64 `json:"on_p50_ms"`
	OffP50  float64 `json:"off_p50_ms"`
	P50Cost float64 `json:"p50_cost"`
	// Limited says that a run's shop figure was the rate limiter's (429s),
	// not the shop's speed: such a row says nothing about the feature.
	Limited bool `json:"rate_limited,omitempty"`
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// compare reads the reports (without the feature first, then those with
// it), prints the comparison and saves it as cost.{json,md} in the folder
// above the first's.
func compare(what, off string, on []string) error {
	offRep, err := readReport(off)
	if err != nil {
		return err
	}
	var onReps []*Report
	for _, p := range on {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		onReps = append(onReps, r)
	}
	mc := cost(what, offRep, onReps)
	md := mc.Markdown()
	fmt.Print(md)
	dir := filepath.Dir(filepath.Dir(off))
	js, _ := json.MarshalIndent(mc, "", "  ")
	for ext, b := range map[string][]byte{".json": js, ".md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, "cost"+ext), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench-system: saved %s.{json,md}\n", filepath.Join(dir, "cost"))
	return nil
}

func limited(l Level) bool { return l.Errors["429"] > 0 }

func cost(what string, off *Report, on []*Report) *Cost {
	mc := &Cost{What: what}
	for _, o := range off.Rows {
		row := CostRow{Profile: o.Profile, Clients: o.Clients, OffRatio: o.TputRatio, OffP50: o.Shop.P50, Limited: limited(o.Shop)}
		n := 0
		for _, r := range on {
			for _, w := range r.Rows {
				if w.Profile == o.Profile && w.Clients == o.Clients {
					row.OnRatio += w.TputRatio
					row.OnP50 += w.Shop.P50
					row.Limited = row.Limited || limited(w.Shop)
					n++
				}
			}
		}
		if n == 0 {
			continue
		}
		row.OnRatio /= float64(n)
		row.OnP50 /= float64(n)
		row.Cost = 1 - ratio(row.OnRatio, row.OffRatio)
		row.P50Cost = 1 - ratio(row.OffP50, row.OnP50)
		mc.Rows = append(mc.Rows, row)
	}
	return mc
}

// Markdown renders the comparison.
func (mc *Cost) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The cost of %s (bench-system: with it, without, with again)\n\n", mc.What)
	b.WriteString("Throughput as shop/reference in each run; the cost is 1 − with/without (the two runs with it averaged), in throughput and in median latency.\n\n")
	b.WriteString("| profile | clients | shop/ref with | without | throughput cost | p50 ms with | without | p50 cost | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range mc.Rows {
		note := ""
		if r.Limited {
			note = "rate-limited (429s): the limiter's figure"
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f× | %.3f× | %s | %.2f | %.2f | %s | %s |\n",
			r.Profile, r.Clients, r.OnRatio, r.OffRatio, pct(r.Cost), r.OnP50, r.OffP50, pct(r.P50Cost), note)
	}
	return b.String()
}

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return fmt.Sprintf("%+.1f %%", 100*f)
}
