package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// meshClients caches one HTTP client per identity and cluster, for a minute
// (a leaf is renewed, a CA rotated).
var meshClients sync.Map // "<consul>|<as>" → meshClient

type meshClient struct {
	hc   *http.Client
	made time.Time
}

// meshClient is an HTTP client inside the cluster's mesh as the service
// `as`: its Connect leaf, asked of Consul's agent (the cluster has no ACLs
// yet: any local process can, issue 16), is its client certificate. The
// servers' identities are not checked here; the mesh step checks them.
func (c *cluster) meshClient(as string) (*http.Client, error) {
	key := c.consulURL + "|" + as
	if v, ok := meshClients.Load(key); ok && time.Since(v.(meshClient).made) < time.Minute {
		return v.(meshClient).hc, nil
	}
	cert, err := c.leaf(as)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true},
	}}
	meshClients.Store(key, meshClient{hc: hc, made: time.Now()})
	return hc, nil
}

// leaf is the Connect leaf certificate of service, from Consul.
func (c *cluster) leaf(service string) (tls.Certificate, error) {
	var l struct{ CertPEM, PrivateKeyPEM string }
	if err := getJSON(c.consulURL+"/v1/agent/connect/ca/leaf/"+service, &l); err != nil {
		return tls.Certificate{}, fmt.Errorf("leaf of %s: %w", service, err)
	}
	return tls.X509KeyPair([]byte(l.CertPEM), []byte(l.PrivateKeyPEM))
}

// The services whose API is in the mesh.
var meshServices = []string{"auth", "inventory", "orders", "payment", "aggregator", "mailsink", "sandbox-processor"}

// instances lists the addresses (host:port) of a service's passing
// instances in Consul.
func (c *cluster) instances(service string) ([]string, error) {
	var es []consulEntry
	if err := getJSON(c.consulURL+"/v1/health/service/"+service+"?passing=true", &es); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no passing instance of %s", service)
	}
	return out, nil
}

// putIntention writes the service-intentions entry of target through
// Consul's API: source → "allow" or "deny".
func (c *cluster) putIntention(target string, sources map[string]string) error {
	type src struct{ Name, Action string }
	e := struct {
		Kind, Name string
		Sources    []src
	}{Kind: "service-intentions", Name: target}
	for n, a := range sources {
		e.Sources = append(e.Sources, src{n, a})
	}
	return sendJSON("PUT", c.consulURL+"/v1/config", e, nil)
}

// stepMesh: no call reaches a service without a mesh certificate; the
// intentions decide who may call whom, and a change takes effect in
// seconds; a CA rotation under load fails no request.
func stepMesh(t *testing.T, w *world) {
	w.needJourney(t)
	var roots struct{ TrustDomain string }
	if err := getJSON(w.c.consulURL+"/v1/agent/connect/ca/roots", &roots); err != nil {
		t.Fatal(err)
	}
	impostor := foreignLeaf(t, fmt.Sprintf("spiffe://%s/ns/default/dc/dc1/svc/aggregator", roots.TrustDomain))
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	otherCA := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{impostor}}}}
	checked := 0
	for _, svc := range meshServices {
		addrs, err := w.c.instances(svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			for name, hc := range map[string]*http.Client{"no certificate": noCert, "another CA's certificate": otherCA} {
				if resp, err := hc.Get("https://" + a + "/health/live"); err == nil {
					resp.Body.Close()
					t.Errorf("%s at %s with %s: answered %d, want the handshake refused", svc, a, name, resp.StatusCode)
				}
			}
			if resp, err := http.Get("http://" + a + "/health/live"); err == nil {
				if resp.StatusCode == http.StatusOK {
					t.Errorf("%s at %s answered plain HTTP", svc, a)
				}
				resp.Body.Close()
			}
			checked++
		}
	}
	t.Logf("%d instances of %d services refused callers without a mesh certificate and with another CA's", checked, len(meshServices))

	// The aggregator's identity may call orders and payment; inventory's
	// may not call payment, and payment's log names it.
	agg, err := w.c.meshClient("aggregator")
	if err != nil {
		t.Fatal(err)
	}
	orders, _ := w.c.addrOf("orders")
	payment, _ := w.c.addrOf("payment")
	var order struct {
		Status string `json:"status"`
	}
	if err := getJSONWith(agg, orders+"/internal/orders/"+w.order, &order); err != nil {
		t.Errorf("orders as the aggregator: %v", err)
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	since := url.QueryEscape(time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339))
	if err := getJSONWith(agg, payment+"/internal/payments?limit=1&since="+since, &page); err != nil {
		t.Errorf("payment as the aggregator: %v", err)
	}
	inv, err := w.c.meshClient("inventory")
	if err != nil {
		t.Fatal(err)
	}
	refusedAt := time.Now()
	if err := getJSONWith(inv, payment+"/internal/payments?limit=1&since="+since, &page); err == nil {
		t.Error("payment answered inventory's identity; the intentions deny it")
	}
	eventually(t, 15*time.Second, "payment's log naming the refused caller", func() error {
		as, err := w.c.allocs("payment")
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.ClientStatus != "running" {
				continue
			}
			out, err := w.c.capture(t, 30*time.Second, filepath.Join(toolsBin(t, w.c.root), "nomad"), "alloc", "logs", a.ID, "payment")
			if err != nil {
				return err
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, `"caller":"inventory"`) && strings.Contains(line, "intentions deny it") && strings.Contains(line, refusedAt.UTC().Format("2006-01-02T15:04")) {
					t.Logf("payment's log: %s", strings.TrimSpace(line))
					return nil
				}
			}
		}
		return errors.New("no line naming inventory")
	})

	// Deny aggregator → inventory: the catalogue fails within seconds (503
	// problem+json), login keeps working; allowed again, it heals.
	n := 0
	catalogue := func() (*response, error) {
		n++ // a query of its own: the edge's micro-cache never answers it
		return w.shop.call("GET", fmt.Sprintf("/v1/products?limit=1&q=mesh%d", n), nil)
	}
	if err := w.c.putIntention("inventory", map[string]string{"aggregator": "deny"}); err != nil {
		t.Fatal(err)
	}
	denied := time.Now()
	restored := false
	defer func() {
		if !restored {
			_, _ = w.c.run(t, time.Minute, filepath.Join(w.c.root, "scripts/intentions.sh"))
		}
	}()
	eventually(t, 30*time.Second, "the catalogue refused to the aggregator", func() error {
		r, err := catalogue()
		if err != nil {
			return err
		}
		if r.status != http.StatusServiceUnavailable || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || !strings.Contains(string(r.body), "catalogue") {
			return fmt.Errorf("got %d %s", r.status, r.body)
		}
		t.Logf("%s after the deny: %d %s", time.Since(denied).Round(100*time.Millisecond), r.status, r.body)
		return nil
	})
	w.login(t, w.buyer)
	if _, err := w.c.run(t, time.Minute, filepath.Join(w.c.root, "scripts/intentions.sh")); err != nil {
		t.Fatal(err)
	}
	restored = true
	allowed := time.Now()
	// Healed: ten answers in a row, so that both aggregators' breakers for
	// inventory are closed again, not one probe let through.
	eventually(t, 90*time.Second, "the catalogue healed", func() error {
		for range 10 {
			r, err := catalogue()
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("got %d %s", r.status, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	t.Logf("the catalogue answered again %s after the intention was restored", time.Since(allowed).Round(100*time.Millisecond))
	w.login(t, w.buyer)
}

// stepMeshRotation: a new Connect CA (a new root key) while buyers browse
// and check out: every leaf is re-issued under it, the services and the
// edge take theirs without a restart, and no request fails.
func stepMeshRotation(t *testing.T, w *world) {
	w.needJourney(t)
	var before struct{ ActiveRootID string }
	if err := getJSON(w.c.consulURL+"/v1/agent/connect/ca/roots", &before); err != nil {
		t.Fatal(err)
	}
	product := w.newProduct(t, fmt.Sprintf("Rotation-proof mug %d", time.Now().UnixNano()%1e6), 100000)
	// Under the edge's rate limit for one client (20/s with the checkouts).
	browse := startLoad(w.c.shopURL, "/v1/products?limit=5", 2, 250*time.Millisecond, 15*time.Second)
	stop := make(chan struct{})
	var checkouts, failed int
	var firstFail string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(100 * time.Millisecond)
			checkouts++
			_, status, err := w.checkout(w.buyer, product, fmt.Sprintf("rotation-%d-%d", time.Now().UnixNano(), i))
			if err != nil || status != "confirmed" {
				failed++
				if firstFail == "" {
					firstFail = fmt.Sprintf("%q %v", status, err)
				}
			}
		}
	}()
	time.Sleep(3 * time.Second)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	if err := sendJSON("PUT", w.c.consulURL+"/v1/connect/ca/configuration", map[string]any{
		"Provider": "consul",
		"Config":   map[string]any{"PrivateKey": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))},
	}, nil); err != nil {
		t.Fatal(err)
	}
	// Every identity's leaf, as the agent hands it out, chains to the new
	// root alone.
	eventually(t, 3*time.Minute, "every leaf re-issued under the new CA", func() error {
		var roots struct {
			ActiveRootID string
			Roots        []struct {
				ID       string
				RootCert string
			}
		}
		if err := getJSON(w.c.consulURL+"/v1/agent/connect/ca/roots", &roots); err != nil {
			return err
		}
		if roots.ActiveRootID == before.ActiveRootID {
			return errors.New("the active root has not changed yet")
		}
		pool := x509.NewCertPool()
		for _, r := range roots.Roots {
			if r.ID == roots.ActiveRootID {
				pool.AppendCertsFromPEM([]byte(r.RootCert))
			}
		}
		for _, svc := range append([]string{"edge"}, meshServices...) {
			cert, err := w.c.leaf(svc)
			if err != nil {
				return err
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, c := range cert.Certificate[1:] {
				if ic, err := x509.ParseCertificate(c); err == nil {
					inter.AddCert(ic)
				}
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return fmt.Errorf("%s's leaf: %v", svc, err)
			}
		}
		return nil
	})
	t.Logf("every leaf under the new CA %s after the rotation", time.Since(rotated).Round(time.Second))
	// The services, the edge's template and HAProxy's reload take the new
	// leaves within seconds; calls go on on them.
	time.Sleep(20 * time.Second)
	close(stop)
	<-done
	codes, errs, summary := browse.finish()
	t.Logf("during the CA rotation: browse %s; %d checkouts, %d failed", summary, checkouts, failed)
	if len(errs) > 0 || len(codes) != 1 || codes[http.StatusOK] == 0 {
		t.Errorf("browsing failed during the CA rotation: %s %v", summary, errs)
	}
	if failed > 0 || checkouts == 0 {
		t.Errorf("%d of %d checkouts failed during the CA rotation; first: %s", failed, checkouts, firstFail)
	}
	if t.Failed() {
		w.meshLogs(t, "aggregator", "inventory")
	}
}

// meshLogs logs the warnings and errors of the jobs' running tasks (named
// as their job), to explain a failed mesh step.
func (w *world) meshLogs(t *testing.T, jobs ...string) {
	t.Helper()
	for _, j := range jobs {
		as, err := w.c.allocs(j)
		if err != nil {
			continue
		}
		for _, a := range as {
			if a.ClientStatus != "running" {
				continue
			}
			out, _ := w.c.capture(t, 30*time.Second, filepath.Join(toolsBin(t, w.c.root), "nomad"), "alloc", "logs", a.ID, j)
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if (strings.Contains(line, `"@level":"warn"`) || strings.Contains(line, `"@level":"error"`) || strings.Contains(line, "mesh") || strings.Contains(line, "TLS")) && n < 60 {
					t.Logf("%s %.8s: %s", j, a.ID, line)
					n++
				}
			}
		}
	}
}

// foreignLeaf is a self-signed certificate with a mesh identity in it: the
// right name from the wrong CA.
func foreignLeaf(t *testing.T, uri string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
