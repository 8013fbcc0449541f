package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Revocation is an entry of auth's GET /internal/revocations: a session
// (SessionID set: every token whose sid names it is refused) or a whole
// account (every token of the subject issued before IssuedBefore).
type Revocation struct {
	AccountID    string    `json:"account_id"`
	SessionID    string    `json:"session_id,omitempty"`
	IssuedBefore time.Time `json:"issued_before"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// RevocationList is the body of GET /internal/revocations.
type RevocationList struct {
	Revocations []Revocation `json:"revocations"`
	NextSince   time.Time    `json:"next_since"`
}

// revocations is what a verifier knows of the revoked tokens: learned by
// polling, so that a request never waits on auth.
type revocations struct {
	mu       sync.RWMutex
	sessions map[string]time.Time // sid → when the entry can be forgotten
	accounts map[string]Revocation
	since    time.Time // next_since of the last answer
	okAt     time.Time // last successful poll
	stale    bool      // a staleness warning was logged
}

// revoked reports whether c is refused by a known revocation.
func (r *revocations) revoked(c *Claims) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.SessionID != "" {
		if _, ok := r.sessions[c.SessionID]; ok {
			return true
		}
	}
	if a, ok := r.accounts[c.Subject]; ok {
		// A token without iat cannot say it is newer: refused.
		return c.IssuedAt == nil || c.IssuedAt.Before(a.IssuedBefore)
	}
	return false
}

// merge adds a poll's answer and forgets what has expired. Entries are
// idempotent, so the overlap between two answers is harmless.
func (r *revocations) merge(list RevocationList, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range list.Revocations {
		if e.SessionID != "" {
			r.sessions[e.SessionID] = e.ExpiresAt
			continue
		}
		// The latest cut-off covers the earlier ones.
		if old, ok := r.accounts[e.AccountID]; ok {
			if old.IssuedBefore.After(e.IssuedBefore) {
				e.IssuedBefore = old.IssuedBefore
			}
			if old.ExpiresAt.After(e.ExpiresAt) {
				e.ExpiresAt = old.ExpiresAt
			}
		}
		r.accounts[e.AccountID] = e
	}
	for sid, exp := range r.sessions {
		if now.After(exp) {
			delete(r.sessions, sid)
		}
	}
	for id, e := range r.accounts {
		if now.After(e.ExpiresAt) {
			delete(r.accounts, id)
		}
	}
	r.since, r.okAt, r.stale = list.NextSince, now, false
}

// revocationsURL is where the verifier polls: configured, or the JWKS
// URL's sibling (both are auth's).
func (c Config) revocationsURL() string {
	if c.RevocationsURL != "" {
		return c.RevocationsURL
	}
	u, err := url.Parse(c.JWKSURL)
	if err != nil {
		return ""
	}
	return u.ResolveReference(&url.URL{Path: "/internal/revocations"}).String()
}

// Run polls auth's revocations every RevocationsInterval until ctx ends,
// so that a logout, a password change or a disabled account refuses the
// tokens already issued within about one interval (plus one request) at
// every service, without a call to auth per request.
//
// When auth cannot be reached the verifier keeps what it knew and keeps
// polling; past RevocationsStaleAfter it logs, once, that revocations are
// stale — and still accepts tokens that are otherwise valid: refusing them
// all would let an outage of auth take every service down, while a stale
// list only delays revocations (never beyond the tokens' own expiry).
func (v *Verifier) Run(ctx context.Context) {
	every := v.cfg.RevocationsInterval
	if every <= 0 {
		every = 2 * time.Second // a Config built by hand, not loaded
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		v.pollRevocations(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (v *Verifier) pollRevocations(ctx context.Context) {
	list, err := v.fetchRevocations(ctx)
	now := v.now()
	if err == nil {
		v.revs.merge(list, now)
		return
	}
	if ctx.Err() != nil {
		return
	}
	v.revs.mu.Lock()
	defer v.revs.mu.Unlock()
	v.log.Debug("fetch revocations", "error", err)
	if !v.revs.stale && now.Sub(v.revs.okAt) > v.cfg.RevocationsStaleAfter {
		v.revs.stale = true
		v.log.Warn("token revocations are stale: auth unreachable; tokens are still accepted until they expire",
			"url", v.cfg.revocationsURL(), "last_success", v.revs.okAt, "error", err)
	}
}

func (v *Verifier) fetchRevocations(ctx context.Context) (RevocationList, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v.revs.mu.RLock()
	since := v.revs.since
	v.revs.mu.RUnlock()
	u := v.cfg.revocationsURL()
	if !since.IsZero() {
		u += "?since=" + url.QueryEscape(since.UTC().Format(time.RFC3339Nano))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return RevocationList{}, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return RevocationList{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return RevocationList{}, fmt.Errorf("revocations: status %d", resp.StatusCode)
	}
	var list RevocationList
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list); err != nil {
		return RevocationList{}, fmt.Errorf("revocations: %w", err)
	}
	return list, nil
}
