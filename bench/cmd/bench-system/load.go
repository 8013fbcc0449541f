package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// op is one unit of work of a simulated client: it returns the HTTP status
// of its last (or failing) request, 0 for a transport error.
type op func(ctx context.Context, c *http.Client, worker, iter int) (status int, err error)

// Level is what one concurrency level of one profile measured.
type Level struct {
	Target     string         `json:"target"` // shop, reference or ceiling
	Profile    string         `json:"profile"`
	Clients    int            `json:"clients"`
	Ops        int            `json:"ops"`
	OK         int            `json:"ok"`
	Seconds    float64        `json:"seconds"`
	Throughput float64        `json:"throughput"` // successful operations per second
	P50        float64        `json:"p50_ms"`
	P90        float64        `json:"p90_ms"`
	P99        float64        `json:"p99_ms"`
	Errors     map[string]int `json:"errors,omitempty"` // by status ("net" for transport errors)
}

// percentile is the nearest-rank percentile p (0..100) of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		rank = len(sorted) - 1
	}
	return sorted[rank]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summarize turns the successful operations' latencies and the failures'
// counts into a Level.
func summarize(lat []time.Duration, errs map[string]int, elapsed time.Duration) Level {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	bad := 0
	for _, n := range errs {
		bad += n
	}
	l := Level{Ops: len(lat) + bad, OK: len(lat), Seconds: elapsed.Seconds(),
		P50: ms(percentile(lat, 50)), P90: ms(percentile(lat, 90)), P99: ms(percentile(lat, 99))}
	if len(errs) > 0 {
		l.Errors = errs
	}
	if elapsed > 0 {
		l.Throughput = float64(l.OK) / elapsed.Seconds()
	}
	return l
}

// addrs hands out loopback source addresses, one per simulated client, so
// that each is a client of its own to the edge's rate limiter.
type addrs struct{ n atomic.Int64 }

func (a *addrs) next() net.IP {
	for {
		n := a.n.Add(1)
		b := byte(n % 254)
		if b == 0 {
			continue
		}
		return net.IPv4(127, byte(10+n/65024%200), byte(n/254%256), b)
	}
}

// newClient is an HTTP client whose connections leave from ip (nil: any).
func newClient(ip net.IP) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// backoff is how long a client waits after a 429.
const backoff = 50 * time.Millisecond

// run drives clients closed-loop (each sends its next operation when the
// previous one is answered) for at most dur and maxOps operations in all.
func run(clients []*http.Client, o op, dur time.Duration, maxOps int) Level {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var (
		mu    sync.Mutex
		all   []time.Duration
		errs  = map[string]int{}
		count atomic.Int64
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration // of the successful operations
			bad := map[string]int{}
			for i := 0; ctx.Err() == nil && count.Add(1) <= int64(maxOps); i++ {
				t0 := time.Now()
				status, err := o(ctx, c, w, i)
				if ctx.Err() != nil && err != nil {
					break // cut by the level's end: not a result
				}
				took := time.Since(t0)
				switch {
				case err != nil && status == 0:
					bad["net"]++
				case status == http.StatusTooManyRequests:
					// A rate-limited client waits before its next try, as
					// a well-behaved one does; the answer is no latency
					// of the work.
					bad["429"]++
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
				case status < 200 || status > 299:
					bad[strconv.Itoa(status)]++
				default:
					lat = append(lat, took)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			for k, v := range bad {
				errs[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(all, errs, time.Since(start))
}

// traceKey carries a request id for do to send (withTrace).
type traceKey struct{}

// withTrace makes every request do sends with ctx carry X-Request-ID id,
// which the edge passes on and every service logs: the logs then tell
// which calls one operation made (scripts/bench-compare.sh counts them).
func withTrace(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceKey{}, id)
}

// do sends one request and drains the answer; the body is returned when
// keep is true.
func do(ctx context.Context, c *http.Client, method, url string, body io.Reader, keep bool, headers ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if id, ok := ctx.Value(traceKey{}).(string); ok {
		req.Header.Set("X-Request-ID", id)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b []byte
	if keep {
		b, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode >= 400 && keep {
		return resp.StatusCode, b, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, b, nil
}

var errStatus = errors.New("unexpected status")
