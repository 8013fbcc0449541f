package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mylittleshopping/shop/openapi"
)

// The shop.yaml router every test client validates answers with.
var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func shopRouter(t *testing.T) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		data, err := openapi.Bundle(openapi.FS, "shop.yaml")
		if err != nil {
			specErr = err
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(data)
		if err != nil {
			specErr = err
			return
		}
		// Match whatever address a test's aggregator listens on.
		doc.Servers = nil
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("shop.yaml: %v", specErr)
	}
	return specRouter
}

// client calls an aggregator as a shopper would, and checks that every
// answer is one shop.yaml describes (status, headers, body schema):
// acceptance 6, on every response of every test.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, base string) *client {
	return &client{t: t, base: base, http: &http.Client{}}
}

// as returns a client of the same aggregator with token.
func (c *client) as(token string) *client {
	cp := *c
	cp.token = token
	return &cp
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; body (when not nil) is sent as JSON; headers are
// name, value pairs.
func (c *client) do(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
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
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	c.validate(req, r)
	return r
}

// patiently is do as a well-behaved client sends a call it may repeat: an
// answer that sheds load (a 503 with Retry-After, such as auth's
// password gate on a busy machine) is sent again after the wait it names,
// for up to 30 s; any other answer is returned as it is.
func (c *client) patiently(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.do(method, path, body, headers...)
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if r.status != http.StatusServiceUnavailable || err != nil || time.Now().After(deadline) {
			return r
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

// validate checks r against shop.yaml.
func (c *client) validate(req *http.Request, r *response) {
	c.t.Helper()
	route, params, err := shopRouter(c.t).FindRoute(req)
	if err != nil {
		c.t.Errorf("%s %s: not an operation of shop.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  r.status,
		Header:  r.header,
		Body:    io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "json") {
		in.Options.ExcludeResponseBody = true
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s → %d does not match shop.yaml: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

// want fails the test unless r has status.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func (r *response) decode(t *testing.T, dst any) {
	t.Helper()
	if err := json.Unmarshal(r.body, dst); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem checks r is a problem+json of status and slug and returns it.
func (r *response) problem(t *testing.T, status int, slug string) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("got Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	r.decode(t, &p)
	if want := "https://mylittleshopping.dev/problems/" + slug; p.Type != want {
		t.Errorf("got problem type %q, want %q (detail %q)", p.Type, want, p.Detail)
	}
	return p
}
