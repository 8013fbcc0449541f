package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Request is what Do and Send send besides a method and a path.
type Request struct {
	// Token, when not empty, is sent as a bearer token.
	Token string
	// Header holds extra headers.
	Header map[string]string
	// Body, when not nil, is sent as JSON: a string as it is, anything
	// else marshalled.
	Body any
}

// Response is an answer of a service.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request to the service and fails the test if no answer
// comes. path is appended to the service's URL unless it is a whole URL.
func (s *Service) Do(t testing.TB, method, path string, req Request) Response {
	t.Helper()
	r, err := s.Send(context.Background(), method, path, req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Send is Do for goroutines, which must not call t.Fatal.
func (s *Service) Send(ctx context.Context, method, path string, req Request) (Response, error) {
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		body = bytes.NewReader(raw)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = s.URL + path
	}
	hr, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return Response{}, err
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := s.Client.Do(hr)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// Want fails the test unless the response has the status.
func (r Response) Want(t testing.TB, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// Decode unmarshals the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// DecodeStrict unmarshals the body into v, refusing fields v does not
// have, so that a response that strays from the spec's types fails.
func (r Response) DecodeStrict(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem checks that the response is a complete problem+json of its
// status, with no field a Problem does not have, and returns it.
func (r Response) Problem(t testing.TB) httpx.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Fatalf("got Content-Type %q, want %q; body: %s", ct, httpx.ProblemContentType, r.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	var p httpx.Problem
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, r.Body)
	}
	if p.Status != r.Status || p.Type == "" || p.Title == "" || p.Instance == "" {
		t.Fatalf("incomplete problem %+v for status %d", p, r.Status)
	}
	return p
}

// WantProblem checks that the response is a problem of status whose type
// is the one of slug, and returns it.
func (r Response) WantProblem(t testing.TB, status int, slug string) httpx.Problem {
	t.Helper()
	r.Want(t, status)
	p := r.Problem(t)
	if want := httpx.ProblemTypeBase + slug; p.Type != want {
		t.Fatalf("got problem type %q, want %q; body: %s", p.Type, want, r.Body)
	}
	return p
}
