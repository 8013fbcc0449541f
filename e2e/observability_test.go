package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The services whose every instance serves /metrics on its health port
// (the metrics_port of its Consul service) and is scraped.
var scraped = []string{"auth", "inventory", "orders", "payment", "aggregator"}

// plainAddr is the base URL of a passing instance of a service outside the
// mesh (the log store, the metrics), from Consul's catalogue.
func (c *cluster) plainAddr(service string) (string, error) {
	var es []consulEntry
	if err := getJSON(c.consulURL+"/v1/health/service/"+service+"?passing=true", &es); err != nil || len(es) == 0 {
		return "", fmt.Errorf("no passing instance of %s: %v", service, err)
	}
	return fmt.Sprintf("http://%s:%d", es[0].Service.Address, es[0].Service.Port), nil
}

// logLine is one line of VictoriaLogs' answer: its fields by name.
type logLine map[string]any

func (l logLine) field(name string) string {
	s, _ := l[name].(string)
	return s
}

// logs runs a LogsQL query on VictoriaLogs, as make logs does.
func (c *cluster) logs(query string) ([]logLine, error) {
	base, err := c.plainAddr("logs")
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.PostForm(base+"/select/logsql/query", url.Values{"query": {query}, "limit": {"10000"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("logsql %q: %d %s", query, resp.StatusCode, b)
	}
	var lines []logLine
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("logsql answer line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// byJob counts lines by their Nomad job.
func byJob(lines []logLine) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		n[l.field("nomad.job")]++
	}
	return n
}

// stepLogFilesApart: the log collector knows a file by its first
// fingerprint_size bytes (nomad/log-collector.nomad.hcl). Two files alike
// there are one file to it, and the second is never read: that is how one
// of two aggregators, started in the same millisecond with a 2.9 KB first
// line, went missing from VictoriaLogs. So every running container's file
// must hold, within those bytes, Docker's envelope of its first line,
// which names the allocation and the task.
func stepLogFilesApart(t *testing.T, w *world) {
	job, err := os.ReadFile(filepath.Join(w.c.root, "nomad", "log-collector.nomad.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*fingerprint_size: (\d+)$`).FindSubmatch(job)
	if m == nil {
		t.Fatal("nomad/log-collector.nomad.hcl: no fingerprint_size: <bytes> in the collector's configuration")
	}
	size, _ := strconv.Atoi(string(m[1]))
	checked, longest := 0, 0
	for _, j := range w.c.jobs(t) {
		if j.ParentID != "" || j.Type == "batch" {
			continue // a run that ends: its containers come and go
		}
		cs, err := w.c.containers(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range cs {
			head, err := readHead(ct.LogPath, size)
			if err != nil {
				t.Fatalf("%s/%s: %v", j.ID, ct.task(), err)
			}
			if len(head) == 0 {
				continue // nothing written yet, nothing to tell apart
			}
			first, _, _ := bytes.Cut(head, []byte("\n"))
			longest = max(longest, len(first))
			for _, label := range []string{`"com.hashicorp.nomad.alloc_id":"` + ct.alloc() + `"`, `"com.hashicorp.nomad.task_name":"` + ct.task() + `"`} {
				if !bytes.Contains(head, []byte(label)) {
					t.Errorf("%s/%s: the first %d bytes of its log file lack %s, so the collector can take it for another instance's; they begin %.300s", j.ID, ct.task(), size, label, head)
				}
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no container's log file to check")
	}
	t.Logf("%d containers' log files, each named in its first %d bytes (the longest first entry seen: %d bytes)", checked, size, longest)
}

// readHead returns the first n bytes of a file, fewer if it is shorter.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:got], err
}

// stepTrace is issue 17's first point: one checkout through HAProxy with a
// chosen X-Request-ID is found, in every component it crossed, by one
// query, within seconds; the mail it queued carries the id too.
func stepTrace(t *testing.T, w *world) {
	w.needJourney(t)
	product := w.newProduct(t, "Traced mug", 5)
	id := "e2e-trace-" + uuid.NewString()
	w.buyer.c.do(t, "PUT", "/v1/cart/lines/"+product, map[string]int{"quantity": 1}).want(t, http.StatusOK)
	r := w.buyer.c.do(t, "POST", "/v1/checkout", map[string]any{"shipping_address": address, "card": card("4242424242424242")},
		"Idempotency-Key", uuid.NewString(), "X-Request-ID", id)
	r.want(t, http.StatusCreated)
	if got := r.header.Get("X-Request-ID"); got != id {
		t.Errorf("the checkout answered with X-Request-ID %q, want %q", got, id)
	}
	answered := time.Now()
	want := []string{"edge", "aggregator", "inventory", "orders", "payment", "mailsink"}
	var lines []logLine
	eventually(t, 10*time.Second, "the checkout's lines in VictoriaLogs from "+strings.Join(want, ", "), func() error {
		var err error
		if lines, err = w.c.logs(`request_id:"` + id + `"`); err != nil {
			return err
		}
		jobs := byJob(lines)
		for _, j := range want {
			if jobs[j] == 0 {
				return fmt.Errorf("none from %s yet (%v)", j, jobs)
			}
		}
		return nil
	})
	t.Logf("%d lines of the checkout from %v, all in VictoriaLogs %s after its answer", len(lines), byJob(lines), time.Since(answered).Round(100*time.Millisecond))

	// What the README shows an operator: make logs, in time order.
	out, err := w.c.run(t, time.Minute, "make", "-s", "-C", w.c.root, "logs", `Q=request_id:"`+id+`"`)
	if err != nil {
		t.Fatalf("make logs: %v", err)
	}
	printed := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, id) {
			printed++
		}
	}
	if printed < len(lines) || !strings.Contains(out, "edge/") || !strings.Contains(out, "mailsink/") {
		t.Errorf("make logs printed %d lines of the checkout, want %d, from the edge to the mail sink:\n%s", printed, len(lines), out)
	}

	// A browse writes at most one line per component at info level: the
	// edge's, the aggregator's and inventory's access lines.
	browse := "e2e-browse-" + uuid.NewString()
	w.buyer.c.do(t, "GET", "/v1/products?limit=5&q=mug", nil, "X-Request-ID", browse).want(t, http.StatusOK)
	var browsed []logLine
	eventually(t, 10*time.Second, "the browse's lines in VictoriaLogs", func() error {
		var err error
		if browsed, err = w.c.logs(`request_id:"` + browse + `"`); err != nil {
			return err
		}
		if jobs := byJob(browsed); jobs["edge"] == 0 || jobs["aggregator"] == 0 || jobs["inventory"] == 0 {
			return fmt.Errorf("from %v", jobs)
		}
		return nil
	})
	for job, n := range byJob(browsed) {
		if n > 1 {
			t.Errorf("one browse wrote %d lines at %s, want at most 1 per component: %v", n, job, browsed)
		}
	}
	t.Logf("one browse: %d lines, %v", len(browsed), byJob(browsed))
	for _, l := range lines {
		if l.field("nomad.job") == "mailsink" {
			t.Logf("the mail it queued: %s %s", l.field("_msg"), l.field("path"))
		}
		for _, f := range []string{"nomad.group", "nomad.task", "nomad.alloc_id", "nomad.node"} {
			if l.field(f) == "" {
				t.Errorf("a line without %s: %v", f, l)
				break
			}
		}
	}
}

// stepLogStoreDown stops VictoriaLogs for 30 s while requests flow: once it
// is back, every line the edge and the aggregator wrote meanwhile is there,
// as many as their allocations' own logs hold (`nomad alloc logs`).
func stepLogStoreDown(t *testing.T, w *world) {
	w.needJourney(t)
	run := uuid.NewString()[:8]
	w.c.nomad(t, "job", "stop", "-detach", "logs")
	eventually(t, time.Minute, "VictoriaLogs stopped", func() error {
		if n, err := w.c.passing("logs"); err != nil || n != 0 {
			return fmt.Errorf("%d passing (%v)", n, err)
		}
		return nil
	})
	stopped := time.Now()
	var ids []string
	for i := 0; time.Since(stopped) < 30*time.Second; i++ {
		id := fmt.Sprintf("e2e-gap-%s-%03d", run, i)
		resp, err := w.shop.call("GET", "/v1/products/"+w.product, nil, "X-Request-ID", id)
		if err != nil || resp.status != http.StatusOK {
			t.Errorf("request %s while the log store is down: %v %v", id, err, resp)
		}
		ids = append(ids, id)
		time.Sleep(500 * time.Millisecond)
	}
	if err := w.c.startJob("logs"); err != nil {
		t.Fatal(err)
	}
	w.c.waitHealthy(t, "logs", "logs", 1, 3*time.Minute)
	t.Logf("VictoriaLogs was down %s; %d requests meanwhile", time.Since(stopped).Round(time.Second), len(ids))

	// What the allocations themselves hold of each request.
	written := map[string]map[string]int{}
	for _, job := range []string{"edge", "aggregator"} {
		written[job] = map[string]int{}
		as, err := w.c.allocs(job)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.ClientStatus != "running" {
				continue
			}
			task := map[string]string{"edge": "haproxy", "aggregator": "aggregator"}[job]
			for _, stream := range []string{"-stdout", "-stderr"} {
				out, err := w.c.capture(t, time.Minute, filepath.Join(toolsBin(t, w.c.root), "nomad"), "alloc", "logs", stream, a.ID, task)
				if err != nil {
					t.Fatalf("nomad alloc logs %s %s: %v", a.ID, task, err)
				}
				for _, id := range ids {
					written[job][id] += strings.Count(out, `"request_id":"`+id+`"`)
				}
			}
		}
	}
	eventually(t, 2*time.Minute, "every line written while VictoriaLogs was down", func() error {
		lines, err := w.c.logs(`request_id:"e2e-gap-` + run + `-"*`)
		if err != nil {
			return err
		}
		got := map[string]map[string]int{"edge": {}, "aggregator": {}}
		for _, l := range lines {
			if m := got[l.field("nomad.job")]; m != nil {
				m[l.field("request_id")]++
			}
		}
		var missing []string
		for job, per := range written {
			for _, id := range ids {
				if per[id] == 0 {
					return fmt.Errorf("%s's own log has no line of %s", job, id)
				}
				if got[job][id] != per[id] {
					missing = append(missing, fmt.Sprintf("%s %s: %d of %d", job, id, got[job][id], per[id]))
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d requests short, e.g. %s", len(missing), missing[0])
		}
		t.Logf("all %d lines of the %d requests arrived (%d from the edge, %d from the aggregator)", len(lines), len(ids), sum(got["edge"]), sum(got["aggregator"]))
		return nil
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// metricsTarget is one instance's /metrics, from its Consul service's meta.
type metricsTarget struct{ service, url string }

func (c *cluster) metricsTargets(service string) ([]metricsTarget, error) {
	var es []struct {
		Service struct {
			Address string
			Meta    map[string]string
		}
	}
	if err := getJSON(c.consulURL+"/v1/health/service/"+service+"?passing=true", &es); err != nil {
		return nil, err
	}
	var ts []metricsTarget
	for _, e := range es {
		if p := e.Service.Meta["metrics_port"]; p != "" {
			ts = append(ts, metricsTarget{service, fmt.Sprintf("http://%s:%s/metrics", e.Service.Address, p)})
		}
	}
	return ts, nil
}

// vmTargets lists VictoriaMetrics' active scrape targets that are up, by
// service.
func (c *cluster) vmTargets() (map[string][]string, error) {
	base, err := c.plainAddr("metrics")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string
				Health    string
				LastError string
			}
		}
	}
	if err := getJSON(base+"/api/v1/targets", &doc); err != nil {
		return nil, err
	}
	up := map[string][]string{}
	for _, tg := range doc.Data.ActiveTargets {
		if tg.Health == "up" {
			up[tg.Labels["service"]] = append(up[tg.Labels["service"]], tg.Labels["instance"])
		}
	}
	return up, nil
}

// waitTargets waits until VictoriaMetrics scrapes want instances of the
// service, all up, and says how long that took.
func (w *world) waitTargets(t *testing.T, service string, want int, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	eventually(t, timeout, fmt.Sprintf("%d %s targets up in VictoriaMetrics", want, service), func() error {
		up, err := w.c.vmTargets()
		if err != nil {
			return err
		}
		if n := len(up[service]); n != want {
			return fmt.Errorf("%d up: %v", n, up[service])
		}
		return nil
	})
	t.Logf("%d %s targets up in VictoriaMetrics after %s", want, service, time.Since(start).Round(time.Second))
}

// alertRule is one of vmalert's rules as VictoriaMetrics' proxy shows it.
type alertRule struct {
	Name      string
	Type      string
	Health    string
	LastError string
	State     string
	Alerts    []struct{ State string }
}

func (c *cluster) alertRules() (map[string]alertRule, error) {
	base, err := c.plainAddr("metrics")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data struct {
			Groups []struct{ Rules []alertRule }
		}
	}
	if err := getJSON(base+"/vmalert/api/v1/rules", &doc); err != nil {
		return nil, err
	}
	rules := map[string]alertRule{}
	for _, g := range doc.Data.Groups {
		for _, r := range g.Rules {
			rules[r.Name] = r
		}
	}
	return rules, nil
}

func (r alertRule) firing() bool {
	for _, a := range r.Alerts {
		if a.State == "firing" {
			return true
		}
	}
	return r.State == "firing"
}

// stepMetrics: every instance's /metrics parses as Prometheus' text format
// and has its request metrics; VictoriaMetrics scrapes every instance,
// found through Consul; every alert rule evaluates without error.
func stepMetrics(t *testing.T, w *world) {
	for _, s := range scraped {
		ts, err := w.c.metricsTargets(s)
		if err != nil {
			t.Fatal(err)
		}
		served := 0
		if len(ts) != instances[s] {
			t.Errorf("%s: %d instances with a metrics_port, want %d", s, len(ts), instances[s])
		}
		for _, tg := range ts {
			resp, err := http.Get(tg.url)
			if err != nil {
				t.Errorf("%s: %v", tg.url, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
			if err != nil {
				t.Errorf("%s: not Prometheus' text format: %v", tg.url, err)
				continue
			}
			if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
				t.Errorf("%s: no Go or process metrics", tg.url)
			}
			// A counter of requests has series once a request came: an
			// instance nobody has called yet has none.
			if fams["http_requests_total"] != nil {
				served++
			}
			t.Logf("%s: %d metric families", tg.url, len(fams))
		}
		if served == 0 {
			t.Errorf("%s: no instance counts its requests (http_requests_total)", s)
		}
	}
	for _, s := range scraped {
		w.waitTargets(t, s, instances[s], 90*time.Second)
	}
	var rules map[string]alertRule
	eventually(t, 90*time.Second, "every alert rule evaluated without error", func() error {
		var err error
		if rules, err = w.c.alertRules(); err != nil {
			return err
		}
		var names []string
		for name := range rules {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, want := range []string{"ErrorRateHigh", "OrderStuck", "OutboxStuck", "BackupLate", "TargetDown"} {
			r, ok := rules[want]
			switch {
			case !ok:
				return fmt.Errorf("no rule %s among %v", want, names)
			case r.Health != "ok" || r.LastError != "":
				return fmt.Errorf("rule %s: health %q, %s", want, r.Health, r.LastError)
			}
		}
		return nil
	})
	t.Logf("%d alert rules evaluated without error", len(rules))
}

// stepStuckOrder: a checkout while payment is stopped leaves its order
// reserved; past the (shortened) threshold OrderStuck fires. With payment
// back, the saga's recovery ends the order and the alert resolves.
func stepStuckOrder(t *testing.T, w *world) {
	w.needJourney(t)
	product := w.newProduct(t, "Stuck mug", 5)
	w.c.nomad(t, "job", "stop", "-detach", "payment")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			w.c.startJob("payment")
		}
	})
	eventually(t, time.Minute, "payment stopped", func() error {
		if n, err := w.c.passing("payment"); err != nil || n != 0 {
			return fmt.Errorf("%d passing (%v)", n, err)
		}
		return nil
	})
	w.buyer.c.do(t, "PUT", "/v1/cart/lines/"+product, map[string]int{"quantity": 1}).want(t, http.StatusOK)
	r := w.buyer.c.do(t, "POST", "/v1/checkout", map[string]any{"shipping_address": address, "card": card("4242424242424242")}, "Idempotency-Key", uuid.NewString())
	t.Logf("checkout with payment stopped: %d %s", r.status, r.body)
	if r.status == http.StatusCreated {
		t.Fatalf("the checkout succeeded with payment stopped: %s", r.body)
	}
	stuck := time.Now()
	eventually(t, 3*time.Minute, "OrderStuck firing", func() error {
		rules, err := w.c.alertRules()
		if err != nil {
			return err
		}
		if r := rules["OrderStuck"]; !r.firing() {
			return fmt.Errorf("OrderStuck %q", r.State)
		}
		return nil
	})
	t.Logf("OrderStuck fired %s after the checkout", time.Since(stuck).Round(time.Second))

	if err := w.c.startJob("payment"); err != nil {
		t.Fatal(err)
	}
	restarted = true
	w.c.waitHealthy(t, "payment", "payment", instances["payment"], 3*time.Minute)
	back := time.Now()
	eventually(t, 4*time.Minute, "OrderStuck resolved", func() error {
		rules, err := w.c.alertRules()
		if err != nil {
			return err
		}
		if r := rules["OrderStuck"]; r.firing() || r.Health != "ok" {
			return fmt.Errorf("OrderStuck %q (health %q)", r.State, r.Health)
		}
		return nil
	})
	t.Logf("OrderStuck resolved %s after payment was back", time.Since(back).Round(time.Second))
}

// stepBackupLate: each database's backup series are scraped through
// Consul; auth's full backup record, made 30 days old in Consul KV (the
// weekly schedule allows 7 days and the slack), fires BackupLate, and the
// real record put back resolves it.
func stepBackupLate(t *testing.T, w *world) {
	for _, db := range databases {
		w.waitTargets(t, db+"-db-backups", 1, 90*time.Second)
	}
	key := w.c.consulURL + "/v1/kv/mylittleshopping/backup/auth/full"
	resp, err := http.Get(key + "?raw")
	if err != nil {
		t.Fatal(err)
	}
	real, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auth's full backup record: %d %s (the stanza task takes a first full backup)", resp.StatusCode, real)
	}
	var rec map[string]any
	if err := json.Unmarshal(real, &rec); err != nil {
		t.Fatalf("auth's full backup record: %v: %s", err, real)
	}
	if rec["ok"] != true {
		t.Fatalf("auth's last full backup failed: %s", real)
	}
	put := func(b []byte) {
		t.Helper()
		if code, body := w.c.as("PUT", key, "X-Consul-Token", w.c.token("consul"), bytes.NewReader(b)); code != http.StatusOK {
			t.Fatalf("write auth's full backup record: %d %s", code, body)
		}
	}
	rule := func(want bool) func() error {
		return func() error {
			rules, err := w.c.alertRules()
			if err != nil {
				return err
			}
			if r := rules["BackupLate"]; r.firing() != want || r.Health != "ok" {
				return fmt.Errorf("BackupLate %q (health %q, %s)", r.State, r.Health, r.LastError)
			}
			return nil
		}
	}
	eventually(t, 90*time.Second, "BackupLate not firing on fresh backups", rule(false))

	old := time.Now().Add(-30 * 24 * time.Hour).UTC()
	rec["started"], rec["finished"] = old.Add(-time.Minute).Format(time.RFC3339Nano), old.Format(time.RFC3339Nano)
	stale, _ := json.Marshal(rec)
	put(stale)
	restored := false
	t.Cleanup(func() {
		if !restored {
			put(real)
		}
	})
	start := time.Now()
	eventually(t, 2*time.Minute, "BackupLate firing", rule(true))
	t.Logf("BackupLate fired %s after auth's full backup record was made 30 days old", time.Since(start).Round(time.Second))
	put(real)
	restored = true
	start = time.Now()
	eventually(t, 2*time.Minute, "BackupLate resolved", rule(false))
	t.Logf("BackupLate resolved %s after the real record was back", time.Since(start).Round(time.Second))
}
