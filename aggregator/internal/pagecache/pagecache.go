// Package pagecache keeps the public catalogue's pages for a short time in
// the aggregator, the way a CDN micro-caches: an anonymous GET of a
// catalogue page is answered from memory when the same page (path and
// query) was fetched less than TTL ago, and concurrent misses of one page
// make one call to inventory between them.
//
// Only anonymous requests are served from it: a seller (or any signed-in
// caller) always reads through, so what they changed is what they see.
// Anonymous readers see a page at most TTL old — stock levels included,
// which the checkout checks again anyway — and a write through this
// instance drops the pages it changes at once (Purge). Only 200 answers
// are kept; an error is never cached, so a peer outage shows as it is.
//
// Memory is bounded: at most MaxEntries pages of at most MaxBody bytes. A
// client sending a new query string on every request only fills the cache
// with pages that expire within TTL; it cannot grow it.
package pagecache

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config sizes the cache. TTL 0 turns it off.
type Config struct {
	TTL        time.Duration `env:"AGGREGATOR_CATALOGUE_CACHE_TTL" default:"1s"`
	MaxEntries int           `env:"AGGREGATOR_CATALOGUE_CACHE_ENTRIES" default:"4096"`
	MaxBody    int           `env:"AGGREGATOR_CATALOGUE_CACHE_MAX_BODY" default:"262144"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.TTL < 0 || c.TTL > time.Minute {
		return fmt.Errorf("AGGREGATOR_CATALOGUE_CACHE_TTL must be between 0 (off) and 1m, got %v", c.TTL)
	}
	if c.MaxEntries < 1 || c.MaxBody < 1 {
		return errors.New("AGGREGATOR_CATALOGUE_CACHE_ENTRIES and AGGREGATOR_CATALOGUE_CACHE_MAX_BODY must be positive")
	}
	return nil
}

// kept are the headers of an answer that a cached copy repeats; the rest
// (the request id above all) belong to each request.
var kept = []string{"Content-Type", "ETag", "Cache-Control", "Last-Modified"}

// Cache is safe for concurrent use. A nil *Cache serves every request
// through.
type Cache struct {
	cfg     Config
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*entry
	filling map[string]*fill
}

// entry is a kept page: always a 200.
type entry struct {
	header  http.Header
	body    []byte
	expires time.Time
}

// fill is one call in progress for a key; the requests that miss the same
// key meanwhile wait for its answer.
type fill struct {
	done chan struct{}
	page *entry // nil when the answer was not cacheable
}

// New returns a cache, or nil when cfg.TTL is 0.
func New(cfg Config) *Cache {
	if cfg.TTL <= 0 {
		return nil
	}
	return &Cache{cfg: cfg, now: time.Now, entries: map[string]*entry{}, filling: map[string]*fill{}}
}

// Cacheable reports whether r may be answered from the cache: an anonymous
// GET without conditions. Anything else reads through.
func Cacheable(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Authorization") == "" &&
		r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == "" &&
		r.Header.Get("Cache-Control") != "no-cache"
}

// Key is the page r asks for: its path and its query, parameters sorted,
// so that the same page asked in another order is one entry.
func Key(r *http.Request) string {
	return r.URL.Path + "?" + r.URL.Query().Encode()
}

// Serve answers r from the cache, or through next (the handler that calls
// inventory), keeping next's answer when it is a 200 of bounded size.
func (c *Cache) Serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if c == nil || !Cacheable(r) {
		next.ServeHTTP(w, r)
		return
	}
	key := Key(r)
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		e.write(w)
		return
	}
	if f, ok := c.filling[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.page != nil {
				f.page.write(w)
				return
			}
		case <-r.Context().Done():
		}
		// The leader's answer was not a page to share (an error, a
		// cancelled call): this request asks for itself.
		next.ServeHTTP(w, r)
		return
	}
	f := &fill{done: make(chan struct{})}
	c.filling[key] = f
	c.mu.Unlock()

	rec := &recorder{w: w, status: http.StatusOK, limit: c.cfg.MaxBody}
	defer func() {
		c.mu.Lock()
		delete(c.filling, key)
		if rec.status == http.StatusOK && !rec.overflow {
			f.page = &entry{header: rec.kept(), body: rec.body.Bytes(), expires: c.now().Add(c.cfg.TTL)}
			c.store(key, f.page)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	next.ServeHTTP(rec, r)
}

// store keeps e under key, making room by dropping expired pages; when
// every page is still fresh, e is not kept. c.mu is held.
func (c *Cache) store(key string, e *entry) {
	if len(c.entries) >= c.cfg.MaxEntries {
		now := c.now()
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.cfg.MaxEntries {
			return
		}
	}
	c.entries[key] = e
}

// Purge drops the pages whose path is one of paths, and every page of a
// listing (a path with no further segment, e.g. /v1/products): a write of
// this instance is seen at once by the anonymous readers it serves.
func (c *Cache) Purge(listing string, paths ...string) {
	if c == nil {
		return
	}
	drop := map[string]bool{listing: true}
	for _, p := range paths {
		drop[p] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if path, _, _ := strings.Cut(k, "?"); drop[path] {
			delete(c.entries, k)
		}
	}
}

// Len is the number of pages kept, expired ones included until they are
// dropped.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (e *entry) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// recorder passes the answer on to the client as it is written, and keeps
// a copy of it up to the size limit.
type recorder struct {
	w        http.ResponseWriter
	status   int
	wrote    bool
	body     bytes.Buffer
	limit    int
	overflow bool
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.w.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	if !r.overflow {
		if r.limit > 0 && r.body.Len()+len(b) > r.limit {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(b)
		}
	}
	return r.w.Write(b)
}

func (r *recorder) kept() http.Header {
	h := http.Header{}
	for _, k := range kept {
		if v := r.w.Header().Values(k); len(v) > 0 {
			h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return h
}
