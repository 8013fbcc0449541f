package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventually polls fn until it returns nil or the deadline passes, and
// fails the test with fn's last error then. Polls are how the tests wait:
// never a fixed sleep standing for "it should be done by now".
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// client calls one base URL, as one user when token is set.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (c *client) as(token string) *client {
	cp := *c
	cp.token = token
	return &cp
}

// call sends a request; body is JSON-encoded unless nil. It returns an
// error only when no answer came.
func (c *client) call(method, path string, body any, headers ...string) (*response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (c *client) do(t *testing.T, method, path string, body any, headers ...string) *response {
	t.Helper()
	r, err := c.call(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// getJSON reads a JSON document from an API of the cluster (Nomad, Consul,
// the mail sink).
func getJSON(url string, v any) error {
	return getJSONWith(&http.Client{Timeout: 10 * time.Second}, url, v)
}

// getJSONWith is getJSON through hc (a mesh client for a service's port).
func getJSONWith(hc *http.Client, url string, v any) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

func sendJSON(method, url string, in, out any) error {
	return sendJSONWith(&http.Client{Timeout: 30 * time.Second}, method, url, in, out)
}

// sendJSONWith is sendJSON through hc (a mesh client for a service's port).
func sendJSONWith(hc *http.Client, method, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, rb)
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// --- Nomad and Consul --------------------------------------------------------

type nomadJob struct {
	ID         string
	ParentID   string
	Type       string
	Periodic   bool
	Status     string
	Stop       bool
	Version    int
	Stable     bool
	TaskGroups []struct {
		Name  string
		Count int
	}
}

type nomadAlloc struct {
	ID            string
	JobID         string
	JobVersion    int
	TaskGroup     string
	ClientStatus  string
	DesiredStatus string
	TaskStates    map[string]struct {
		State    string
		Restarts int
		Events   []struct {
			Type           string
			DisplayMessage string
		}
	}
}

type consulEntry struct {
	Service struct {
		ID      string
		Service string
		Address string
		Port    int
	}
	Checks []struct {
		CheckID   string
		Name      string
		Status    string
		ServiceID string
	}
}

func (c *cluster) job(id string) (nomadJob, error) {
	var j nomadJob
	err := getJSON(c.nomadURL+"/v1/job/"+id, &j)
	return j, err
}

func (c *cluster) jobs(t *testing.T) []nomadJob {
	t.Helper()
	var js []nomadJob
	if err := getJSON(c.nomadURL+"/v1/jobs", &js); err != nil {
		t.Fatal(err)
	}
	return js
}

func (c *cluster) allocs(job string) ([]nomadAlloc, error) {
	var as []nomadAlloc
	err := getJSON(c.nomadURL+"/v1/job/"+job+"/allocations", &as)
	return as, err
}

// latestDeployment is the status of the job's deployment of its current
// version.
func (c *cluster) deploymentStatus(job string) (string, error) {
	j, err := c.job(job)
	if err != nil {
		return "", err
	}
	var ds []struct {
		JobVersion  int
		Status      string
		CreateIndex int
	}
	if err := getJSON(c.nomadURL+"/v1/job/"+job+"/deployments", &ds); err != nil {
		return "", err
	}
	best, status := -1, "none"
	for _, d := range ds {
		if d.JobVersion == j.Version && d.CreateIndex > best {
			best, status = d.CreateIndex, d.Status
		}
	}
	return status, nil
}

// health lists the Consul instances of a service with their checks.
func (c *cluster) health(service string) ([]consulEntry, error) {
	var es []consulEntry
	err := getJSON(c.consulURL+"/v1/health/service/"+service, &es)
	return es, err
}

// passing counts the instances of a service whose every check passes.
func (c *cluster) passing(service string) (int, error) {
	es, err := c.health(service)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		ok := true
		for _, ch := range e.Checks {
			ok = ok && ch.Status == "passing"
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// srv asks Consul DNS for the SRV records of a service, as dig would:
// `dig @127.0.0.1 -p <dns port> <service>.service.consul SRV`.
func (c *cluster) srv(service string) ([]*net.SRV, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, c.dnsAddr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, srvs, err := r.LookupSRV(ctx, service, "tcp", "service.consul")
	return srvs, err
}

// startJob submits a stopped job again, as it was (`nomad job start`).
func (c *cluster) startJob(job string) error {
	var full map[string]any
	if err := getJSON(c.nomadURL+"/v1/job/"+job, &full); err != nil {
		return err
	}
	full["Stop"] = false
	return sendJSON("POST", c.nomadURL+"/v1/jobs", map[string]any{"Job": full}, nil)
}

// waitHealthy waits until the job's current version is deployed and every
// instance of its services passes in Consul.
func (c *cluster) waitHealthy(t *testing.T, job, service string, want int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, job+" healthy", func() error {
		st, err := c.deploymentStatus(job)
		if err != nil {
			return err
		}
		if st != "successful" {
			return fmt.Errorf("deployment %s", st)
		}
		n, err := c.passing(service)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%d of %d instances of %s passing", n, want, service)
		}
		return nil
	})
}

// --- the mail sink ---------------------------------------------------------

type sinkMessage struct {
	Message struct {
		Subject  string
		TextPart string
		HTMLPart string
	} `json:"message"`
}

func (c *cluster) mails(to string) ([]sinkMessage, error) {
	var ms []sinkMessage
	err := getJSON(c.mailURL+"/messages?to="+url.QueryEscape(to), &ms)
	return ms, err
}

var linkRE = regexp.MustCompile(`https?://\S+/v1/verify-email#token=[A-Za-z0-9_-]+`)

// --- steady load ---------------------------------------------------------------

// load sends GETs at a steady pace until stopped, and counts the answers.
// Every request has a deadline, so a hang shows up as an error.
type load struct {
	stop    chan struct{}
	done    sync.WaitGroup
	total   atomic.Int64
	mu      sync.Mutex
	byCode  map[int]int
	errs    []string
	servers map[string]int
	// samples: the first answers that were not 200, for the summary.
	samples []string
}

// startLoad sends GET path to base every interval (one request at a time
// in each of the workers), with a per-request timeout.
func startLoad(base, path string, workers int, interval, timeout time.Duration) *load {
	l := &load{stop: make(chan struct{}), byCode: map[int]int{}, servers: map[string]int{}}
	hc := &http.Client{Timeout: timeout}
	for range workers {
		l.done.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				l.total.Add(1)
				resp, err := hc.Get(base + path)
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err.Error())
				} else {
					l.byCode[resp.StatusCode]++
					l.servers[resp.Header.Get("X-Served-By")]++
					if resp.StatusCode == http.StatusServiceUnavailable && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
						l.errs = append(l.errs, "503 without problem+json")
					}
				}
				var body []byte
				if resp != nil {
					body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if resp != nil && resp.StatusCode != http.StatusOK && len(l.samples) < 3 {
					l.samples = append(l.samples, fmt.Sprintf("%s %d via %s: %s", time.Now().Format("15:04:05.000"), resp.StatusCode, resp.Header.Get("X-Served-By"), body))
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// finish stops the load and returns a summary.
func (l *load) finish() (codes map[int]int, errs []string, summary string) {
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for code, n := range l.byCode {
		parts = append(parts, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(parts)
	summary = fmt.Sprintf("%d requests: %s; %d errors", l.total.Load(), strings.Join(parts, " "), len(l.errs))
	if len(l.samples) > 0 {
		summary += "; first answers not 200: " + strings.Join(l.samples, " | ")
	}
	return l.byCode, l.errs, summary
}

var errNone = errors.New("none yet")
