package pagecache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin counts the calls that reached it and answers each with its
// number, so that a test sees which answers were kept.
type origin struct {
	calls  atomic.Int64
	status int
	gate   chan struct{} // when set, every call waits for it to close
	size   int           // body size beyond the call number
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := o.calls.Add(1)
	if o.gate != nil {
		<-o.gate
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", n))
	w.Header().Set("ETag", fmt.Sprintf(`"v%d"`, n))
	status := o.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"call":%d}`, n)
	for range o.size {
		w.Write([]byte(" "))
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCache(t *testing.T, cfg Config) (*Cache, *clock) {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = time.Second
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 100
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 16
	}
	c := New(cfg)
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	c.now = clk.now
	return c, clk
}

func get(c *Cache, o http.Handler, target string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	c.Serve(w, r, o)
	return w
}

// TestFreshPagesAreShared: an anonymous page is fetched once per TTL, the
// same page asked with its parameters in another order included; it comes
// back with its status, type and ETag but without the first request's id.
func TestFreshPagesAreShared(t *testing.T) {
	c, clk := newCache(t, Config{})
	o := &origin{}
	first := get(c, o, "/v1/products?limit=20&sort=newest")
	again := get(c, o, "/v1/products?sort=newest&limit=20")
	if o.calls.Load() != 1 || again.Body.String() != first.Body.String() {
		t.Fatalf("two anonymous reads within the TTL: %d calls, bodies %q and %q; want 1 call, the same body", o.calls.Load(), first.Body, again.Body)
	}
	if again.Code != http.StatusOK || again.Header().Get("ETag") != `"v1"` || again.Header().Get("Content-Type") != "application/json" {
		t.Errorf("a cached page: got %d, ETag %q, type %q", again.Code, again.Header().Get("ETag"), again.Header().Get("Content-Type"))
	}
	if id := again.Header().Get("X-Request-Id"); id != "" {
		t.Errorf("a cached page repeats the request id %q of the request that fetched it", id)
	}
	clk.t = clk.t.Add(time.Second)
	if get(c, o, "/v1/products?limit=20&sort=newest"); o.calls.Load() != 2 {
		t.Errorf("a read after the TTL: %d calls, want 2", o.calls.Load())
	}
	if get(c, o, "/v1/products?limit=21&sort=newest"); o.calls.Load() != 3 {
		t.Errorf("another page: %d calls, want 3", o.calls.Load())
	}
}

// TestSignedInAndConditionalReadsGoThrough: a signed-in caller (a seller
// who just changed a product) and a conditional request always reach
// inventory, and never fill the cache for the anonymous ones.
func TestSignedInAndConditionalReadsGoThrough(t *testing.T) {
	c, _ := newCache(t, Config{})
	o := &origin{}
	get(c, o, "/v1/products/1", "Authorization", "Bearer x")
	get(c, o, "/v1/products/1", "Authorization", "Bearer x")
	get(c, o, "/v1/products/1", "If-None-Match", `"v1"`)
	get(c, o, "/v1/products/1", "Cache-Control", "no-cache")
	if o.calls.Load() != 4 || c.Len() != 0 {
		t.Errorf("signed-in and conditional reads: %d calls, %d pages kept; want 4 calls, none kept", o.calls.Load(), c.Len())
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/products", nil)
	c.Serve(httptest.NewRecorder(), r, o)
	if c.Len() != 0 {
		t.Error("a POST was kept")
	}
}

// TestErrorsAreNotKept: a 503 (inventory down) or a 404 is passed on and
// asked again next time, so that an outage shows as it is and ends as soon
// as inventory is back.
func TestErrorsAreNotKept(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusNotFound, http.StatusBadRequest} {
		c, _ := newCache(t, Config{})
		o := &origin{status: status}
		if w := get(c, o, "/v1/products/1"); w.Code != status {
			t.Errorf("got %d, want %d passed on", w.Code, status)
		}
		get(c, o, "/v1/products/1")
		if o.calls.Load() != 2 || c.Len() != 0 {
			t.Errorf("two reads answered %d: %d calls, %d kept; want 2 calls, none kept", status, o.calls.Load(), c.Len())
		}
	}
}

// TestConcurrentMissesMakeOneCall: a hundred readers of a page that is not
// kept yet wait for the one call the first of them makes.
func TestConcurrentMissesMakeOneCall(t *testing.T) {
	c, _ := newCache(t, Config{})
	o := &origin{gate: make(chan struct{})}
	var wg sync.WaitGroup
	bodies := make([]string, 100)
	for i := range bodies {
		wg.Go(func() { bodies[i] = get(c, o, "/v1/products?q=mug").Body.String() })
	}
	for o.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the others queue behind the first
	close(o.gate)
	wg.Wait()
	if o.calls.Load() != 1 {
		t.Errorf("100 concurrent misses made %d calls, want 1", o.calls.Load())
	}
	for i, b := range bodies {
		if b != `{"call":1}` {
			t.Fatalf("reader %d got %q, want the one call's page", i, b)
		}
	}
}

// TestBounded: a client asking a new page on every request fills the
// cache up to MaxEntries and no further; once those expire, new pages take
// their place. A page larger than MaxBody is passed on, not kept.
func TestBounded(t *testing.T) {
	c, clk := newCache(t, Config{MaxEntries: 10, MaxBody: 64})
	o := &origin{}
	for i := range 1000 {
		get(c, o, fmt.Sprintf("/v1/products?q=junk-%d", i))
	}
	if n := c.Len(); n != 10 {
		t.Errorf("after 1000 distinct pages: %d kept, want the bound of 10", n)
	}
	clk.t = clk.t.Add(time.Second)
	get(c, o, "/v1/products?limit=20")
	before := o.calls.Load()
	get(c, o, "/v1/products?limit=20")
	if o.calls.Load() != before {
		t.Error("once the junk expired, a new page was not kept")
	}
	big := &origin{size: 100}
	w := get(c, big, "/v1/products/big")
	get(c, big, "/v1/products/big")
	if big.calls.Load() != 2 || w.Body.Len() != len(`{"call":1}`)+100 {
		t.Errorf("a page over MaxBody: %d calls and %d bytes, want 2 calls and the whole page passed on", big.calls.Load(), w.Body.Len())
	}
}

// TestPurge: a seller's write through this instance drops the product's
// page and every listing, and leaves other products' pages.
func TestPurge(t *testing.T) {
	c, _ := newCache(t, Config{})
	o := &origin{}
	for _, p := range []string{"/v1/products?limit=20", "/v1/products?q=mug", "/v1/products/1", "/v1/products/2"} {
		get(c, o, p)
	}
	c.Purge("/v1/products", "/v1/products/1")
	before := o.calls.Load()
	for _, p := range []string{"/v1/products?limit=20", "/v1/products?q=mug", "/v1/products/1", "/v1/products/2"} {
		get(c, o, p)
	}
	if got := o.calls.Load() - before; got != 3 {
		t.Errorf("after a purge of product 1: %d pages fetched again, want 3 (two listings and product 1)", got)
	}
}

// TestOff: TTL 0 is no cache at all.
func TestOff(t *testing.T) {
	var c *Cache = New(Config{})
	o := &origin{}
	get(c, o, "/v1/products")
	get(c, o, "/v1/products")
	c.Purge("/v1/products")
	if o.calls.Load() != 2 || c.Len() != 0 {
		t.Errorf("with TTL 0: %d calls, want 2", o.calls.Load())
	}
}
