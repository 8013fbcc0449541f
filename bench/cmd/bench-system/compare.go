package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Cost compares bench-system runs of the shop with a feature (the mesh,
// info-level logging) and without it (scripts/bench-compare.sh: with,
// without, with again): for each profile and level, the shop's throughput
// as a fraction of the reference measured in the same run (which cancels
// the machine's drift between runs), and its median latency, with the
// feature against without it: the medians over the runs of each side,
// which alternate.
type Cost struct {
	What        string    `json:"what"`
	RunsWith    int       `json:"runs_with"`
	RunsWithout int       `json:"runs_without"`
	Rows        []CostRow `json:"rows"`
	// Hops and Ops: the mesh's hops timed alone, and what they make of
	// each operation (hops.go), when the run timed them.
	Hops []Hop    `json:"hops,omitempty"`
	Ops  []OpCost `json:"operations,omitempty"`
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
	// Spread is the runs' spread with the feature plus without it (each
	// max-min over median): the noise the cost is to be read against.
	Spread float64 `json:"spread"`
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

// compare reads the reports (those without the feature, then those with
// it), prints the comparison and saves it as cost.{json,md} in the folder
// above the first's. hopsPath and linesPath, when given, are the hop
// benchmarks' output and the traced operations' log lines (hops.go).
func compare(what string, off, on []string, hopsPath, linesPath string) error {
	read := func(paths []string) ([]*Report, error) {
		var reps []*Report
		for _, p := range paths {
			r, err := readReport(p)
			if err != nil {
				return nil, err
			}
			reps = append(reps, r)
		}
		return reps, nil
	}
	offReps, err := read(off)
	if err != nil {
		return err
	}
	onReps, err := read(on)
	if err != nil {
		return err
	}
	mc := cost(what, offReps, onReps)
	if hopsPath != "" {
		if mc.Hops, mc.Ops, err = hopsFromFiles(hopsPath, linesPath, onReps); err != nil {
			return err
		}
	}
	md := mc.Markdown()
	fmt.Print(md)
	dir := filepath.Dir(filepath.Dir(off[0]))
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

// median is the middle of xs (the mean of the two middle ones for an even
// count): one disturbed run does not move it.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// figures gathers one profile and level's shop/reference throughput and
// shop p50 across reports, and whether any met the rate limiter.
func figures(reps []*Report, profile string, clients int) (ratios, p50s []float64, lim bool) {
	for _, r := range reps {
		for _, w := range r.Rows {
			if w.Profile == profile && w.Clients == clients {
				ratios = append(ratios, w.TputRatio)
				p50s = append(p50s, w.Shop.P50)
				lim = lim || limited(w.Shop)
			}
		}
	}
	return ratios, p50s, lim
}

// cost compares, for every profile and level of the first report without
// the feature, the medians over the runs with it and over those without.
func cost(what string, off, on []*Report) *Cost {
	mc := &Cost{What: what, RunsWith: len(on), RunsWithout: len(off)}
	if len(off) == 0 {
		return mc
	}
	for _, o := range off[0].Rows {
		offR, offP, offLim := figures(off, o.Profile, o.Clients)
		onR, onP, onLim := figures(on, o.Profile, o.Clients)
		if len(onR) == 0 {
			continue
		}
		row := CostRow{Profile: o.Profile, Clients: o.Clients, Limited: offLim || onLim,
			OnRatio: median(onR), OffRatio: median(offR), OnP50: median(onP), OffP50: median(offP)}
		row.Cost = 1 - ratio(row.OnRatio, row.OffRatio)
		row.P50Cost = 1 - ratio(row.OffP50, row.OnP50)
		row.Spread = spread(onR) + spread(offR)
		mc.Rows = append(mc.Rows, row)
	}
	return mc
}

// spread is how far apart the runs of one side are, as a fraction of
// their median: a cost smaller than the spreads is not measured.
func spread(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	return ratio(slices.Max(xs)-slices.Min(xs), median(xs))
}

// Markdown renders the comparison.
func (mc *Cost) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The cost of %s (bench-system, %d runs with it and %d without, alternating)\n\n", mc.What, mc.RunsWith, mc.RunsWithout)
	b.WriteString("Throughput as shop/reference in each run; the cost is 1 − with/without of the medians over each side's runs, in throughput and in median latency. Spread: the runs' spread (max − min over median) with and without, added: a cost within it is noise.\n\n")
	b.WriteString("| profile | clients | shop/ref with | without | throughput cost | spread | p50 ms with | without | p50 cost | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range mc.Rows {
		note := ""
		if r.Limited {
			note = "rate-limited (429s): the limiter's figure"
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f× | %.3f× | %s | %.0f %% | %.2f | %.2f | %s | %s |\n",
			r.Profile, r.Clients, r.OnRatio, r.OffRatio, pct(r.Cost), 100*r.Spread, r.OnP50, r.OffP50, pct(r.P50Cost), note)
	}
	b.WriteString(hopsMarkdown(mc.Hops, mc.Ops))
	return b.String()
}

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return fmt.Sprintf("%+.1f %%", 100*f)
}
