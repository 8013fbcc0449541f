// Command bench-system measures the shop as its users meet it: through
// the public path (HAProxy, the aggregator, the services), closed loop at
// fixed concurrency, against a reference in the same run (one process,
// one database, the same product page and checkout writes) measured
// alternately, and the HTTP ceiling (a constant JSON answer). It makes its
// own data through the public API (sellers, products, verified buyers),
// prints a table and saves <out>/<time>.json, .md and .png.
//
//	go run ./cmd/bench-system -shop http://127.0.0.1:8080 -mailsink http://127.0.0.1:8025
//
// Each simulated client leaves from its own 127.0.0.0/8 address, so that
// the aggregator's rate limiter (per client) sees as many clients as the
// run has: the figures are those of N rate-limited users.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-system:", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseLevels(s string) ([]int, error) {
	var ls []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("bad level %q", f)
		}
		ls = append(ls, n)
	}
	return ls, nil
}

func mainErr() error {
	shopURL := flag.String("shop", env("SHOP_URL", "http://127.0.0.1:8080"), "the shop's public URL (HAProxy), as `make up` prints it (shop_url)")
	mailURL := flag.String("mailsink", env("MAILSINK_URL", "http://127.0.0.1:8025"), "the mail sink's URL (mailsink_url; a trailing /messages is fine)")
	perLevel := flag.Duration("duration", 5*time.Second, "the time of each level")
	maxOps := flag.Int("max-ops", 50000, "the most operations of each level")
	levelsFlag := flag.String("levels", "1,4,16,64", "the concurrency levels")
	profFlag := flag.String("profiles", strings.Join(profiles, ","), "the profiles to run")
	out := flag.String("out", ".run/bench", "where the report files go")
	nProducts := flag.Int("products", 24, "the products the run creates (in the shop and the reference)")
	replot := flag.String("render", "", "re-render the .md and .png of a saved report (its .json), and run nothing")
	without := flag.String("compare-without", "", "compare saved reports of the shop without a feature (their .json, comma-separated) with the reports given as arguments (with it), and run nothing (scripts/bench-compare.sh)")
	what := flag.String("what", "the feature", "what -compare-without compares, for the report's title")
	hopsPath := flag.String("hops", "", "with -compare-without: the output of the mesh's hop benchmarks (BenchmarkEdgeHop, BenchmarkCall), any number of rounds")
	linesPath := flag.String("trace-lines", "", "with -hops: JSON of the traced operations' request log lines by job, by profile ({\"browse\": {\"edge\": 1, …}})")
	flag.Parse()
	if *without != "" {
		if flag.NArg() == 0 {
			return fmt.Errorf("-compare-without: name the reports with the feature as arguments")
		}
		if (*hopsPath == "") != (*linesPath == "") {
			return fmt.Errorf("-hops and -trace-lines go together")
		}
		return compare(*what, strings.Split(*without, ","), flag.Args(), *hopsPath, *linesPath)
	}
	if *replot != "" {
		b, err := os.ReadFile(*replot)
		if err != nil {
			return err
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *replot, err)
		}
		return writeReport(&rep, filepath.Dir(*replot))
	}
	levels, err := parseLevels(*levelsFlag)
	if err != nil {
		return err
	}
	profs := strings.Split(*profFlag, ",")
	base := strings.TrimRight(*shopURL, "/")
	mail := strings.TrimSuffix(strings.TrimRight(*mailURL, "/"), "/messages")
	maxLevel := 0
	for _, l := range levels {
		maxLevel = max(maxLevel, l)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, _, err := do(ctx, newClient(nil), "GET", base+"/v1/products?limit=1", nil, true); err != nil {
		return fmt.Errorf("the shop does not answer at %s (run `make up` first): %w", base, err)
	}

	runID := strconv.FormatInt(time.Now().Unix()%1e8, 36)
	names := make([]string, *nProducts)
	for i := range names {
		names[i] = fmt.Sprintf("Bench %s %02d", searchWord(runID), i)
	}
	const onHand = 1_000_000

	fmt.Fprintln(os.Stderr, "bench-system: starting the reference's PostgreSQL")
	pg, err := startPG()
	if err != nil {
		return err
	}
	defer pg.stop()
	ref, err := startReference(pg.url(), names, onHand)
	if err != nil {
		return err
	}
	defer ref.close()

	ips := &addrs{}
	fmt.Fprintf(os.Stderr, "bench-system: creating 2 sellers, %d products, %d verified buyers in %s\n", len(names), maxLevel, base)
	t0 := time.Now()
	ids, buyers, err := setupShop(ctx, &shopSetup{base: base, mail: mail, ips: ips}, runID, names, onHand, maxLevel)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-system: data ready in %s\n", time.Since(t0).Round(time.Millisecond))

	shop := &target{name: "shop", base: base, ids: ids, run: runID,
		buyer: func(w int) (string, string) { return "Authorization", "Bearer " + buyers[w%len(buyers)].token }}
	reft := &target{name: "ref", base: ref.url, ids: ref.ids, run: runID,
		buyer: func(w int) (string, string) { return "X-Buyer", "buyer-" + strconv.Itoa(w) }}
	clients := func(n int) []*http.Client {
		cs := make([]*http.Client, n)
		for i := range cs {
			cs[i] = newClient(ips.next())
		}
		return cs
	}
	host, _ := os.Hostname()
	rep := &Report{
		Time:     time.Now().UTC().Format(time.RFC3339),
		Machine:  fmt.Sprintf("%s, %d CPUs, %s/%s, %s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		ShopURL:  base,
		PerLevel: fmt.Sprintf("%s or %d operations", *perLevel, *maxOps),
	}
	for _, prof := range profs {
		for li, n := range levels {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			level := li + 1
			s := run1(shop, prof, level, clients(n), *perLevel, *maxOps)
			r := run1(reft, prof, level, clients(n), *perLevel, *maxOps)
			row := newRow(prof, n, s, r)
			fmt.Fprintf(os.Stderr, "bench-system: %-8s %3d clients: shop %8.1f/s p99 %7.2f ms (%s) | ref %8.1f/s p99 %7.2f ms (%s) | %.3f×\n",
				prof, n, s.Throughput, s.P99, fmtErrors(s.Errors), r.Throughput, r.P99, fmtErrors(r.Errors), row.TputRatio)
			rep.Rows = append(rep.Rows, row)
		}
		if id, ok := trace(ctx, shop, prof, clients(1)[0]); ok {
			if rep.Traces == nil {
				rep.Traces = map[string]string{}
			}
			rep.Traces[prof] = id
		}
	}
	for _, n := range levels {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cl := clients(n)
		c := run(cl, func(ctx context.Context, c *http.Client, _, _ int) (int, error) {
			st, _, err := do(ctx, c, "GET", ref.url+"/ceiling", nil, false)
			return st, err
		}, *perLevel, *maxOps)
		c.Target, c.Profile, c.Clients = "ceiling", "ceiling", n
		rep.Ceiling = append(rep.Ceiling, c)
	}
	rep.Notes = []string{
		"Throughput counts successful (2xx) operations per second; p50/p90/p99 are of the successful operations; a checkout operation is a cart line PUT plus POST /v1/checkout.",
		"Each simulated client has its own 127.0.0.0/8 source address, so the aggregator's rate limiter (20 req/s, burst 40, per client and per aggregator instance; `make up` runs 2 instances) applies to each: " +
			"after the burst the shop's figures at N clients are capped near N×20×instances req/s (a checkout operation is 2 requests); a client that gets a 429 waits 50 ms, and the 429s are counted as errors. " +
			"Where the shop's column shows 429s, the figure is the limiter's, not the shop's speed.",
		"The reference (and the ceiling) is called directly on loopback, without an edge, a limiter or authentication; its PostgreSQL runs with the default durability (fsync, synchronous commit).",
		PlotLegend(),
	}
	return writeReport(rep, *out)
}

// trace makes a few more operations of profile prof in the shop, the
// last with the same X-Request-ID on each of its requests, and returns
// that id when it succeeded. The first ones make the last meet the shop
// as the level's operations did: a browse's page in the micro-cache of
// every aggregator instance (which, under load, calls inventory once a
// second per page and instance), whichever the edge picks.
func trace(ctx context.Context, t *target, prof string, c *http.Client) (string, bool) {
	const warm = 4
	id := fmt.Sprintf("bench-%s-trace-%s", t.run, prof)
	op := t.profile(prof, 0)
	for i := range warm {
		_, _ = op(ctx, c, 0, 1<<20+i)
	}
	st, err := op(withTrace(ctx, id), c, 0, 1<<20+warm)
	if err != nil || st >= 300 {
		fmt.Fprintf(os.Stderr, "bench-system: the traced %s failed: %d %v\n", prof, st, err)
		return "", false
	}
	return id, true
}

func run1(t *target, prof string, level int, cl []*http.Client, dur time.Duration, maxOps int) Level {
	l := run(cl, t.profile(prof, level), dur, maxOps)
	l.Target, l.Profile, l.Clients = t.name, prof, len(cl)
	return l
}

func writeReport(rep *Report, dir string) error {
	md := rep.Markdown()
	fmt.Print(md)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := strings.ReplaceAll(rep.Time, ":", "")
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	var img bytes.Buffer
	if err := rep.WritePNG(&img); err != nil {
		return err
	}
	for ext, b := range map[string][]byte{".json": js, ".md": []byte(md), ".png": img.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, stamp+ext), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench-system: saved %s.{json,md,png}\n", filepath.Join(dir, stamp))
	return nil
}
