package mesh

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	"github.com/hashicorp/go-hclog"
)

// A real Consul agent (the consul binary on PATH) with Connect's built-in
// CA; intentions default deny, as the cluster's are.
func startConsul(t testing.TB) (*testutil.TestServer, *api.Client) {
	t.Helper()
	srv, err := testutil.NewTestServerConfigT(t, func(c *testutil.TestServerConfig) {
		c.LogLevel = "warn"
	})
	if err != nil {
		t.Fatalf("start consul agent (is consul on PATH?): %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	srv.WaitForSerfCheck(t)
	srv.WaitForActiveCARoot(t)
	client, err := api.NewClient(&api.Config{Address: srv.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	intention(t, client, "*", map[string]string{"*": string(api.IntentionActionDeny)})
	return srv, client
}

// intention writes the service-intentions entry of target: source => allow|deny.
func intention(t testing.TB, c *api.Client, target string, sources map[string]string) {
	t.Helper()
	e := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: target}
	for s, action := range sources {
		e.Sources = append(e.Sources, &api.SourceIntention{Name: s, Action: api.IntentionAction(action)})
	}
	if _, _, err := c.ConfigEntries().Set(e, nil); err != nil {
		t.Fatalf("intentions of %s: %v", target, err)
	}
}

// logs is a logger whose output the test reads.
type logs struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func join(t testing.TB, srv *testutil.TestServer, service string) (*Mesh, *logs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := &logs{}
	log := hclog.New(&hclog.LoggerOptions{Name: service, Output: out, Level: hclog.Debug})
	m, err := New(ctx, Config{ConsulAddr: srv.HTTPAddr, AuthorizeTTL: 500 * time.Millisecond}, service, log)
	if err != nil {
		t.Fatal(err)
	}
	return m, out
}

// serve runs a TLS server in the mesh as m answering "hello from <service>",
// and returns its address.
func serve(t testing.TB, m *Mesh) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.Authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", m.Service())
	})), ConnContext: m.ConnContext}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// client calls addr as from, the way the aggregator does: the logical
// name in Host, an instance's address in the URL.
func client(from *Mesh) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: from.Transport(base), Timeout: 5 * time.Second}
}

func call(c *http.Client, target, addr string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = target + ".service.consul"
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIntentionsDecideWhoCalls(t *testing.T) {
	srv, c := startConsul(t)
	intention(t, c, "payment", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	payment, paymentLogs := join(t, srv, "payment")
	aggregator, _ := join(t, srv, "aggregator")
	inventory, _ := join(t, srv, "inventory")
	addr := serve(t, payment)

	status, body, err := call(client(aggregator), "payment", addr)
	if err != nil || status != http.StatusOK || body != "hello from payment" {
		t.Fatalf("aggregator → payment: %d %q %v", status, body, err)
	}
	// Default deny: inventory has no intention to payment.
	if _, _, err := call(client(inventory), "payment", addr); err == nil {
		t.Fatal("inventory → payment: the handshake succeeded, want it refused")
	}
	eventually(t, 2*time.Second, "payment's log naming the refused caller", func() error {
		if !strings.Contains(paymentLogs.String(), "caller=inventory") || !strings.Contains(paymentLogs.String(), "intentions deny it") {
			return errors.New(paymentLogs.String())
		}
		return nil
	})
}

func TestServerRefusesCallersWithoutAMeshCertificate(t *testing.T) {
	srv, c := startConsul(t)
	intention(t, c, "orders", map[string]string{"*": string(api.IntentionActionAllow)})
	orders, _ := join(t, srv, "orders")
	addr := serve(t, orders)

	// No client certificate at all.
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := plain.Get("https://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("no certificate: got %d, want the handshake refused", resp.StatusCode)
	}
	// A certificate of another CA, with the right identity in it.
	other := foreignCert(t, orders.Identity("aggregator"))
	foreign := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{other}}}}
	if resp, err := foreign.Get("https://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("another CA's certificate: got %d, want the handshake refused", resp.StatusCode)
	}
	// Plain HTTP on the TLS port.
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served")
		}
		resp.Body.Close()
	}
}

func TestClientChecksTheServersIdentity(t *testing.T) {
	srv, c := startConsul(t)
	intention(t, c, "payment", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	payment, _ := join(t, srv, "payment")
	aggregator, _ := join(t, srv, "aggregator")
	addr := serve(t, payment)
	// payment's address, called as orders: a mesh certificate, not orders'.
	_, _, err := call(client(aggregator), "orders", addr)
	if err == nil || !strings.Contains(err.Error(), "svc/payment") {
		t.Fatalf("calling payment as orders: %v, want the server's identity refused", err)
	}
}

func TestChangedIntentionReachesOpenConnections(t *testing.T) {
	srv, c := startConsul(t)
	intention(t, c, "inventory", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	inventory, invLogs := join(t, srv, "inventory")
	aggregator, _ := join(t, srv, "aggregator")
	addr := serve(t, inventory)
	hc := client(aggregator)
	if status, _, err := call(hc, "inventory", addr); err != nil || status != http.StatusOK {
		t.Fatalf("allowed: %d %v", status, err)
	}
	intention(t, c, "inventory", map[string]string{"aggregator": string(api.IntentionActionDeny)})
	eventually(t, 5*time.Second, "the deny on the open connection", func() error {
		status, body, err := call(hc, "inventory", addr)
		if err == nil {
			return fmt.Errorf("still answered: %d %s", status, body)
		}
		return nil
	})
	if !strings.Contains(invLogs.String(), "caller=aggregator") {
		t.Errorf("inventory's log does not name the refused caller:\n%s", invLogs.String())
	}
	intention(t, c, "inventory", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	eventually(t, 5*time.Second, "the allow again", func() error {
		status, body, err := call(hc, "inventory", addr)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%d %s %v", status, body, err)
		}
		return nil
	})
}

// A new CA (a new root key) while calls go on: the leaves are re-issued,
// both sides pick them up, and no call fails.
func TestCARotationFailsNoCall(t *testing.T) {
	srv, c := startConsul(t)
	intention(t, c, "orders", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	orders, ordersLogs := join(t, srv, "orders")
	aggregator, aggLogs := join(t, srv, "aggregator")
	addr := serve(t, orders)
	before := orders.leaf.Load().Leaf.SerialNumber

	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			// Fresh connections as well as kept-alive ones.
			hc := client(aggregator)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%10 == 0 {
					hc.CloseIdleConnections()
				}
				calls.Add(1)
				status, body, err := call(hc, "orders", addr)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", status, body, err))
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect().CASetConfig(&api.CAConfig{Provider: "consul", Config: map[string]any{
		"PrivateKey": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
	}}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "both sides on leaves of the new CA", func() error {
		if orders.leaf.Load().Leaf.SerialNumber.Cmp(before) == 0 {
			return errors.New("orders still has its old leaf")
		}
		if !strings.Contains(ordersLogs.String(), "CA roots changed") || !strings.Contains(aggLogs.String(), "leaf certificate renewed") {
			return errors.New("the rotation is not in both logs yet")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // calls on the new leaves
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed during the CA rotation; first: %v", n, calls.Load(), firstErr.Load())
	}
	t.Logf("%d calls during the CA rotation, none failed", calls.Load())
}

// foreignCert is a self-signed certificate carrying a mesh identity: the
// right name, the wrong CA.
func foreignCert(t *testing.T, uri string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: u, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func parseURL(s string) ([]*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return []*url.URL{u}, nil
}
