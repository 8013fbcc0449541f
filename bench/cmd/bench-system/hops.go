package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The end-to-end comparison (with, without, with again, each a redeploy)
// cannot tell a cost of a few per cent from the machine's noise between
// runs. The hops say it finer: what the mesh adds to each hop, timed alone
// in the same run with plain and with mutual TLS side by side, once per
// round (BenchmarkEdgeHop and BenchmarkCall in services/platform/mesh),
// times the hops that one operation makes, counted in the logs of a
// traced operation (Report.Traces), against the operation's own figures
// with the mesh.

// Hop is one kind of hop the mesh secures, timed alone: µs per request,
// the medians over the rounds.
type Hop struct {
	Kind     string  `json:"kind"`  // edge (HAProxy → aggregator) or call (service → service)
	Bench    string  `json:"bench"` // the benchmark that timed it
	Rounds   int     `json:"rounds"`
	PlainSeq float64 `json:"plain_sequential_us"`
	MeshSeq  float64 `json:"mesh_sequential_us"`
	PlainPar float64 `json:"plain_parallel_us"`
	MeshPar  float64 `json:"mesh_parallel_us"`
	// AddedSeq and AddedPar are what the mesh adds to one hop: the median
	// over the rounds of each round's mesh minus plain (the two ran next
	// to each other, so the machine's drift between rounds cancels).
	// Sequential, its latency; in parallel (the machine's cores all busy),
	// the machine time it takes.
	AddedSeq float64 `json:"added_sequential_us"`
	AddedPar float64 `json:"added_parallel_us"`
	// Procs is the benchmark's GOMAXPROCS, the cores it kept busy in
	// parallel: a request's machine time there is Procs × its time.
	Procs int `json:"procs"`
}

// Added is what the mesh adds to one hop: its latency (sequential) and
// its machine time (in parallel, the cores all busy).
func (h Hop) Added() (seq, machine float64) { return h.AddedSeq, float64(h.Procs) * h.AddedPar }

// pairedDiff is the median of mesh[i] - plain[i].
func pairedDiff(plain, mesh []float64) float64 {
	var d []float64
	for i := range min(len(plain), len(mesh)) {
		d = append(d, mesh[i]-plain[i])
	}
	return median(d)
}

// OpCost is the mesh's share of one profile's operation, from its hops.
type OpCost struct {
	Profile string `json:"profile"`
	// Lines are the traced operation's request log lines by job; Edge the
	// hops from HAProxy to the aggregator (the edge's lines), Inner the
	// calls between services (every job's lines but the edge's and the
	// aggregator's, which it answers).
	Lines map[string]int `json:"log_lines"`
	Edge  int            `json:"edge_hops"`
	Inner int            `json:"inner_calls"`
	// AddedSeq is the latency the mesh adds to one operation (µs), P50 the
	// operation's median with the mesh at one client (ms), LatencyCost
	// their ratio.
	AddedSeq    float64 `json:"added_latency_us"`
	P50         float64 `json:"p50_ms_one_client"`
	LatencyCost float64 `json:"latency_cost"`
	// AddedPar is the machine time the mesh adds to one operation (µs,
	// CPU time of every core); at the top level (TopClients) the shop is
	// saturated, so its share of throughput is AddedPar × throughput
	// (ops/s) over the cores there (the hops' benchmarks' GOMAXPROCS: the
	// same machine).
	AddedPar       float64 `json:"added_machine_us"`
	TopClients     int     `json:"top_clients"`
	TopThroughput  float64 `json:"top_throughput"`
	ThroughputCost float64 `json:"throughput_cost"`
}

var hopBenches = map[string]string{"BenchmarkEdgeHop": "edge", "BenchmarkCall": "call"}

var benchLine = regexp.MustCompile(`^(Benchmark\w+)/(sequential|parallel)/(plain|mesh)(?:-(\d+))?\s+\d+\s+([0-9.]+) ns/op`)

// readHops reads Go benchmark output (any number of rounds of
// BenchmarkEdgeHop and BenchmarkCall) into one Hop per benchmark.
func readHops(r io.Reader) ([]Hop, error) {
	samples := map[string][]float64{} // bench/side/mode → µs
	procs := map[string]int{}         // bench → GOMAXPROCS (its -N)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil || hopBenches[m[1]] == "" {
			continue
		}
		ns, err := strconv.ParseFloat(m[5], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", sc.Text(), err)
		}
		k := m[1] + "/" + m[3] + "/" + m[2] // bench/side/mode
		samples[k] = append(samples[k], ns/1000)
		if p, err := strconv.Atoi(m[4]); err == nil {
			procs[m[1]] = p
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var hops []Hop
	for _, bench := range []string{"BenchmarkEdgeHop", "BenchmarkCall"} {
		get := func(side, mode string) []float64 { return samples[bench+"/"+side+"/"+mode] }
		h := Hop{Kind: hopBenches[bench], Bench: bench,
			PlainSeq: median(get("plain", "sequential")), MeshSeq: median(get("mesh", "sequential")),
			PlainPar: median(get("plain", "parallel")), MeshPar: median(get("mesh", "parallel"))}
		h.AddedSeq = pairedDiff(get("plain", "sequential"), get("mesh", "sequential"))
		h.Procs = max(1, procs[bench])
		h.AddedPar = pairedDiff(get("plain", "parallel"), get("mesh", "parallel"))
		h.Rounds = min(len(get("plain", "sequential")), len(get("mesh", "sequential")), len(get("plain", "parallel")), len(get("mesh", "parallel")))
		if h.Rounds == 0 {
			return nil, fmt.Errorf("no complete round of %s (plain and mesh, sequential and parallel)", bench)
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// opCosts puts each traced profile's hops (lines: log lines by job, by
// profile) against its figures with the mesh (the reports with it).
func opCosts(hops []Hop, lines map[string]map[string]int, on []*Report) []OpCost {
	byKind := map[string]Hop{}
	for _, h := range hops {
		byKind[h.Kind] = h
	}
	edgeSeq, edgePar := byKind["edge"].Added()
	callSeq, callPar := byKind["call"].Added()
	cores := float64(max(1, byKind["edge"].Procs))
	var profs []string
	for p := range lines {
		profs = append(profs, p)
	}
	slices.Sort(profs)
	var out []OpCost
	for _, prof := range profs {
		oc := OpCost{Profile: prof, Lines: lines[prof]}
		for job, n := range oc.Lines {
			switch job {
			case "edge":
				oc.Edge += n
			case "aggregator":
			default:
				oc.Inner += n
			}
		}
		oc.AddedSeq = float64(oc.Edge)*edgeSeq + float64(oc.Inner)*callSeq
		oc.AddedPar = float64(oc.Edge)*edgePar + float64(oc.Inner)*callPar
		// The shop's figures of this profile, by level, over the runs.
		p50s, tputs := map[int][]float64{}, map[int][]float64{}
		for _, r := range on {
			for _, w := range r.Rows {
				if w.Profile == prof {
					p50s[w.Clients] = append(p50s[w.Clients], w.Shop.P50)
					tputs[w.Clients] = append(tputs[w.Clients], w.Shop.Throughput)
					oc.TopClients = max(oc.TopClients, w.Clients)
				}
			}
		}
		oc.P50, oc.TopThroughput = median(p50s[1]), median(tputs[oc.TopClients])
		oc.LatencyCost = ratio(oc.AddedSeq/1000, oc.P50)
		oc.ThroughputCost = oc.AddedPar / 1e6 * oc.TopThroughput / cores
		out = append(out, oc)
	}
	return out
}

// hopsFromFiles reads the hop benchmarks' output and the traced
// operations' log lines (JSON: profile → job → lines).
func hopsFromFiles(hopsPath, linesPath string, on []*Report) ([]Hop, []OpCost, error) {
	f, err := os.Open(hopsPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	hops, err := readHops(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", hopsPath, err)
	}
	b, err := os.ReadFile(linesPath)
	if err != nil {
		return nil, nil, err
	}
	var lines map[string]map[string]int
	if err := json.Unmarshal(b, &lines); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", linesPath, err)
	}
	return hops, opCosts(hops, lines, on), nil
}

// hopsMarkdown renders the hops and the operations' shares.
func hopsMarkdown(hops []Hop, ops []OpCost) string {
	if len(hops) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## The hops, timed alone in the same run\n\n")
	b.WriteString("Each hop with plain HTTP and with the mesh side by side, once per round (services/platform/mesh: BenchmarkEdgeHop, HAProxy to a Go server answering a 7 KB product page; BenchmarkCall, the mesh transport to a service's server); µs per request, medians over the rounds; added: the median of each round's mesh − plain. Sequential: the latency the mesh adds; parallel, the cores all busy: the time per request, whose added part times the cores is the machine time (CPU) the mesh adds.\n\n")
	b.WriteString("| hop | rounds | plain, sequential | mesh | added | plain, parallel | mesh | added | added machine time |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, h := range hops {
		seq, machine := h.Added()
		fmt.Fprintf(&b, "| %s (%s) | %d | %.1f | %.1f | %+.1f | %.1f | %.1f | %+.1f | %+.1f (%d cores) |\n",
			h.Kind, h.Bench, h.Rounds, h.PlainSeq, h.MeshSeq, seq, h.PlainPar, h.MeshPar, h.AddedPar, machine, h.Procs)
	}
	if len(ops) == 0 {
		return b.String()
	}
	b.WriteString("\nWhat that makes of each operation: its hops, counted in the logs of one traced operation (its request lines by job: the edge's are its hops to the aggregator, every other service's but the aggregator's are calls inside), times each hop's added time; against its p50 at one client and its throughput at the top level, with the mesh (medians of the runs with it).\n\n")
	b.WriteString("| profile | log lines | edge hops | calls inside | added latency | p50, 1 client | latency cost | added machine time | throughput, top level | throughput cost |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range ops {
		var jobs []string
		for j, n := range o.Lines {
			jobs = append(jobs, fmt.Sprintf("%s %d", j, n))
		}
		slices.Sort(jobs)
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.0f µs | %.2f ms | %s | %.0f µs | %.0f/s at %d | %s |\n",
			o.Profile, strings.Join(jobs, ", "), o.Edge, o.Inner, o.AddedSeq, o.P50, pct(o.LatencyCost), o.AddedPar, o.TopThroughput, o.TopClients, pct(o.ThroughputCost))
	}
	return b.String()
}
