package reply

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// answer has the shape of every generated client's *XxxResponse: the body
// read whole and the HTTP response behind it.
type answer struct {
	Body         []byte
	HTTPResponse *http.Response
}

func (a *answer) StatusCode() int { return a.HTTPResponse.StatusCode }
func (a *answer) GetBody() []byte { return a.Body }

// call asks a service standing in for a peer (its wire behaviour only)
// through a real peer.Peer, as the generated clients do.
func call(t *testing.T, handler http.HandlerFunc) (*answer, error) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	p := peer.New(peer.Config{Name: "auth", Attempts: 3, Backoff: time.Millisecond}, http.DefaultTransport, logging.NewNull())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &answer{Body: b, HTTPResponse: resp}, nil
}

// written is what the aggregator's client reads for err.
func written(t *testing.T, err error) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/login", nil)
	r = r.WithContext(logging.WithContext(r.Context(), logging.ForTest(t)))
	httpx.Error(w, r, err)
	return w
}

// TestSheddingIsPassedOn: a service shedding load for one request (503,
// Retry-After, problem type …/busy) reaches the client as it is: 503
// problem+json, the service's Retry-After and type, not the capability's
// generic "unavailable" (which tells the client the whole capability is
// down). Another 503 is still the capability's.
func TestSheddingIsPassedOn(t *testing.T) {
	t.Parallel()
	resp, err := call(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", httpx.ProblemContentType)
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"type":"https://mylittleshopping.dev/problems/busy","title":"Service Unavailable","status":503,"detail":"too many password checks at once; retry after the Retry-After delay"}`)
	})
	got := written(t, Check(t.Context(), "accounts", resp, err))
	var p httpx.Problem
	if err := json.Unmarshal(got.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if got.Code != http.StatusServiceUnavailable || got.Header().Get("Content-Type") != httpx.ProblemContentType ||
		got.Header().Get("Retry-After") != "7" || p.Type != httpx.ProblemTypeBase+"busy" ||
		p.Detail != "too many password checks at once; retry after the Retry-After delay" {
		t.Errorf("got %d %s Retry-After %q %+v, want the service's 503 busy with Retry-After 7", got.Code, got.Header().Get("Content-Type"), got.Header().Get("Retry-After"), p)
	}

	resp, err = call(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", httpx.ProblemContentType)
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"type":"https://mylittleshopping.dev/problems/unavailable","title":"Service Unavailable","status":503}`)
	})
	got = written(t, Check(t.Context(), "accounts", resp, err))
	if err := json.Unmarshal(got.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if got.Code != http.StatusServiceUnavailable || p.Type != httpx.ProblemTypeBase+"unavailable" || p.Detail != "accounts is unavailable; retry in a few seconds" {
		t.Errorf("another 503: got %d %+v, want the capability's 503", got.Code, p)
	}
}

// TestOwnSheddingIsBusy: when the aggregator already has its cap of calls
// in flight to a service, the request is refused at once; the service is
// up, so the client reads a 503 busy for that request (with Retry-After),
// not the capability's "unavailable".
func TestOwnSheddingIsBusy(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p := peer.New(peer.Config{Name: "auth", MaxInFlight: 1}, http.DefaultTransport, logging.NewNull())
	do := func() (*answer, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return &answer{Body: b, HTTPResponse: resp}, err
	}
	go do()
	<-entered
	resp, err := do()
	got := written(t, Check(t.Context(), "accounts", resp, err))
	var pr httpx.Problem
	if err := json.Unmarshal(got.Body.Bytes(), &pr); err != nil {
		t.Fatal(err)
	}
	if got.Code != http.StatusServiceUnavailable || got.Header().Get("Retry-After") != "1" || pr.Type != httpx.ProblemTypeBase+"busy" {
		t.Errorf("got %d Retry-After %q %+v, want 503 busy with Retry-After 1", got.Code, got.Header().Get("Retry-After"), pr)
	}
}
