package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// actor is one user of the shop made through its public API.
type actor struct {
	email, password, token string
	c                      *http.Client
}

type shopSetup struct {
	base, mail string
	ips        *addrs
}

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// doPassword is do for a request that checks or sets a password (signup,
// login): auth bounds the hashes in flight and answers 503 busy with
// Retry-After beyond them, which a client is meant to wait out. On a
// loaded host the setup's logins met it, and the whole run stopped.
func doPassword(ctx context.Context, c *http.Client, method, url string, body any) (int, []byte, error) {
	for attempt := 1; ; attempt++ {
		st, b, err := do(ctx, c, method, url, jsonBody(body), true)
		if st != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("/problems/busy")) || attempt == 10 {
			return st, b, err
		}
		select {
		case <-ctx.Done():
			return st, b, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

var linkRE = regexp.MustCompile(`https?://\S+/v1/verify-email#token=[A-Za-z0-9_-]+`)

// newActor signs up, follows the verification mail (the page, then the
// POST of its fragment's token, as the page's button does) and logs in.
func (s *shopSetup) newActor(ctx context.Context, role, run string, i int) (*actor, error) {
	a := &actor{email: fmt.Sprintf("bench-%s-%s-%d@example.com", run, role, i), password: "correct horse battery", c: newClient(s.ips.next())}
	if _, _, err := doPassword(ctx, a.c, "POST", s.base+"/v1/signup", map[string]string{
		"email": a.email, "password": a.password, "display_name": "Bench " + role, "role": role}); err != nil {
		return nil, err
	}
	var link string
	for deadline := time.Now().Add(60 * time.Second); link == ""; {
		var ms []struct {
			Message struct{ TextPart, HTMLPart string } `json:"message"`
		}
		_, b, err := do(ctx, a.c, "GET", s.mail+"/messages?to="+url.QueryEscape(a.email), nil, true)
		if err == nil && json.Unmarshal(b, &ms) == nil {
			for _, m := range ms {
				if l := linkRE.FindString(m.Message.TextPart + m.Message.HTMLPart); l != "" {
					link = l
				}
			}
		}
		if link == "" {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no verification mail to %s in 60s (mail sink %s)", a.email, s.mail)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	page := link[strings.Index(link, "/v1/"):strings.Index(link, "#")]
	if _, _, err := do(ctx, a.c, "GET", s.base+page, nil, true); err != nil {
		return nil, err
	}
	_, token, _ := strings.Cut(link, "#token=")
	if _, _, err := do(ctx, a.c, "POST", s.base+"/v1/verify-email", jsonBody(map[string]string{"token": token}), true); err != nil {
		return nil, err
	}
	_, b, err := doPassword(ctx, a.c, "POST", s.base+"/v1/login", map[string]string{"email": a.email, "password": a.password})
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("login of %s: no access token in %s", a.email, b)
	}
	a.token = tok.AccessToken
	return a, nil
}

// setupShop makes the sellers, their products (names) and nBuyers
// verified buyers, and waits until the catalogue search finds the
// products. It returns the products' ids and the buyers.
func setupShop(ctx context.Context, s *shopSetup, run string, names []string, onHand, nBuyers int) ([]string, []*actor, error) {
	const sellers = 2
	var ids []string
	for si := 0; si < sellers; si++ {
		sel, err := s.newActor(ctx, "seller", run, si)
		if err != nil {
			return nil, nil, fmt.Errorf("seller: %w", err)
		}
		for i := si; i < len(names); i += sellers {
			_, b, err := do(ctx, sel.c, "POST", s.base+"/v1/seller/products", jsonBody(map[string]any{
				"name": names[i], "description": "A product of the benchmark.",
				"price": map[string]any{"amount": 1850, "currency": "EUR"}, "on_hand": onHand}), true,
				"Authorization", "Bearer "+sel.token)
			if err != nil {
				return nil, nil, fmt.Errorf("create product: %w", err)
			}
			var p struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
				return nil, nil, fmt.Errorf("create product: no id in %s", b)
			}
			ids = append(ids, p.ID)
		}
	}
	buyers := make([]*actor, nBuyers)
	errs := make([]error, nBuyers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			buyers[i], errs[i] = s.newActor(ctx, "buyer", run, i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, fmt.Errorf("buyer: %w", err)
		}
	}
	c := newClient(s.ips.next())
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, b, err := do(ctx, c, "GET", s.base+"/v1/products?limit=100&q="+url.QueryEscape(searchWord(run)), nil, true)
		var page struct {
			Items []struct{ ID string } `json:"items"`
		}
		if err == nil && json.Unmarshal(b, &page) == nil && len(page.Items) >= len(ids) {
			return ids, buyers, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the catalogue search does not find the %d products after 30s (%v)", len(ids), err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// searchWord is the word every product of the run has in its name.
func searchWord(run string) string { return "kettle" + run }

// target is what a profile drives: the shop through the edge, or the
// reference.
type target struct {
	name  string
	base  string
	ids   []string
	buyer func(w int) (header, value string)
	run   string
}

var shipping = map[string]string{"name": "Ada Lovelace", "line1": "12 rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"}

func card() map[string]any {
	return map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": time.Now().Year() + 3, "cvc": "123"}
}

func (t *target) browse(ctx context.Context, c *http.Client, _, _ int) (int, error) {
	st, _, err := do(ctx, c, "GET", t.base+"/v1/products?limit=20", nil, false)
	return st, err
}

func (t *target) search(ctx context.Context, c *http.Client, _, _ int) (int, error) {
	st, _, err := do(ctx, c, "GET", t.base+"/v1/products?limit=20&q="+url.QueryEscape(searchWord(t.run)), nil, false)
	return st, err
}

func (t *target) detail(ctx context.Context, c *http.Client, w, i int) (int, error) {
	st, _, err := do(ctx, c, "GET", t.base+"/v1/products/"+t.ids[(w*31+i)%len(t.ids)], nil, false)
	return st, err
}

// checkout is a cart line, then POST /v1/checkout with a fresh
// Idempotency-Key, as buyer w.
func (t *target) checkout(tag string) op {
	return func(ctx context.Context, c *http.Client, w, i int) (int, error) {
		h, v := t.buyer(w)
		pid := t.ids[(w*7+i)%len(t.ids)]
		st, _, err := do(ctx, c, "PUT", t.base+"/v1/cart/lines/"+pid, jsonBody(map[string]int{"quantity": 1}), false, h, v)
		if err != nil || st != http.StatusOK {
			return st, err
		}
		key := fmt.Sprintf("bench-%s-%s-%s-%d-%d", t.run, t.name, tag, w, i)
		st, _, err = do(ctx, c, "POST", t.base+"/v1/checkout", jsonBody(map[string]any{"shipping_address": shipping, "card": card()}),
			false, h, v, "Idempotency-Key", key)
		return st, err
	}
}

// mixed is 90 % browse, 10 % checkout, in a fixed pattern.
func (t *target) mixed(tag string) op {
	co := t.checkout(tag)
	return func(ctx context.Context, c *http.Client, w, i int) (int, error) {
		if (w+i)%10 == 0 {
			return co(ctx, c, w, i)
		}
		return t.browse(ctx, c, w, i)
	}
}

func (t *target) profile(name string, level int) op {
	switch name {
	case "browse":
		return t.browse
	case "search":
		return t.search
	case "detail":
		return t.detail
	case "checkout":
		return t.checkout(fmt.Sprintf("%s-%d", name, level))
	default:
		return t.mixed(fmt.Sprintf("%s-%d", name, level))
	}
}

var profiles = []string{"browse", "search", "detail", "checkout", "mixed"}
