package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestEdgeAnswers runs the edge's HAProxy configuration (nomad/edge.nomad.hcl,
// rendered as Nomad renders it) in front of a net/http server standing in
// for the aggregator, without a cluster, and sends it what hostile clients
// send: forged forwarding headers, control bytes in the request line and in
// headers, requests that Go's net/http refuses before any handler. Every
// error must be problem+json, and the aggregator must hear of the client's
// address only from HAProxy. scripts/lint-deploy.sh runs it too.
func TestEdgeAnswers(t *testing.T) {
	t.Parallel()
	e := startEdge(t)

	t.Run("forwarding headers are the edge's", func(t *testing.T) {
		// From 127.0.0.9: HAProxy must name that address, whatever the
		// client wrote.
		resp, body := e.send(t, "127.0.0.9", "GET /v1/products HTTP/1.1\r\nHost: shop\r\n"+
			"X-Forwarded-For: 203.0.113.66\r\nX-Forwarded-For: 198.51.100.1\r\nForwarded: for=203.0.113.67\r\n"+
			"X-Real-IP: 203.0.113.68\r\nX-Client-Address: 203.0.113.69\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		var got map[string][]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		want := map[string][]string{"X-Forwarded-For": {"127.0.0.9"}}
		for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Client-Address"} {
			if strings.Join(got[h], "|") != strings.Join(want[h], "|") {
				t.Errorf("the aggregator got %s %q, want %q", h, got[h], want[h])
			}
		}
	})

	t.Run("a request id: the client's when valid, else a new one, logged in JSON", func(t *testing.T) {
		for _, tt := range []struct{ name, headers, keep string }{
			{"a valid one is kept", "X-Request-ID: checkout-42.a:b/c+d=e\r\n", "checkout-42.a:b/c+d=e"},
			{"none", "", ""},
			{"one with a quote", "X-Request-ID: a\"b\r\n", ""},
			{"one too long", "X-Request-ID: " + strings.Repeat("a", 129) + "\r\n", ""},
			{"two of them", "X-Request-ID: one\r\nX-Request-ID: two\r\n", ""},
		} {
			resp, body := e.send(t, "127.0.0.1", "GET /v1/products?q=\"x\" HTTP/1.1\r\nHost: shop\r\n"+tt.headers+"Connection: close\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: got %d %s", tt.name, resp.StatusCode, body)
			}
			var got map[string][]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %s: %v", tt.name, body, err)
			}
			ids := got["X-Request-Id"]
			switch {
			case len(ids) != 1:
				t.Errorf("%s: the aggregator got X-Request-ID %q, want one", tt.name, ids)
			case tt.keep != "" && ids[0] != tt.keep:
				t.Errorf("%s: the aggregator got X-Request-ID %q, want the client's %q", tt.name, ids[0], tt.keep)
			case tt.keep == "" && uuid.Validate(ids[0]) != nil:
				t.Errorf("%s: the aggregator got X-Request-ID %q, want a new UUID", tt.name, ids[0])
			}
			if len(ids) == 1 {
				entry, line := e.waitLog(t, ids[0])
				if entry["status"] != float64(200) || entry["path"] != "/v1/products" || entry["service"] != "edge" || entry["method"] != "GET" {
					t.Errorf("%s: access log line %s", tt.name, line)
				}
			}
		}
	})

	t.Run("the stats page wants the operator's password", func(t *testing.T) {
		checkStatsPassword(t, e.stats, statsPassword)
	})

	hostile := []struct {
		name, request string
		want          int
	}{
		{"a control byte in the request line", "GET /v1/products?q=a\x01b HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
		{"DEL in the request line", "GET /v1/products\x7f HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
		{"a space in the path", "GET /v1/pro ducts HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
		{"no HTTP version", "GET /v1/products\r\nHost: shop\r\n\r\n", 400},
		{"NUL in the request line", "GET /v1/products?q=\x00 HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
		{"a control byte in a header", "GET /v1/products HTTP/1.1\r\nHost: shop\r\nX-Note: a\x01b\r\n\r\n", 400},
		{"NUL in a header", "GET /v1/products HTTP/1.1\r\nHost: shop\r\nX-Note: a\x00b\r\n\r\n", 400},
		{"an escape in a header", "GET /v1/products HTTP/1.1\r\nHost: shop\r\nUser-Agent: \x1b[31mred\r\n\r\n", 400},
		{"a header without a name", "GET /v1/products HTTP/1.1\r\nHost: shop\r\n: nameless\r\n\r\n", 400},
		{"a header line without a colon", "GET /v1/products HTTP/1.1\r\nHost: shop\r\nnot a header\r\n\r\n", 400},
		{"a control byte in a header of a kept-alive connection's second request",
			"GET /v1/products HTTP/1.1\r\nHost: shop\r\n\r\nGET /v1/products HTTP/1.1\r\nHost: shop\r\nX-Note: a\x02b\r\n\r\n", 400},
		{"an Expect net/http refuses before any handler", "POST /v1/login HTTP/1.1\r\nHost: shop\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417},
		{"an internal path", "GET /internal/products HTTP/1.1\r\nHost: shop\r\n\r\n", 404},
		{"headers too large", "GET /v1/products HTTP/1.1\r\nHost: shop\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n", 431},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.send(t, "127.0.0.1", tt.request)
			if resp.StatusCode != tt.want || !isProblem(resp.Header, body, tt.want) {
				t.Errorf("got %d %s %q, want %d application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.want)
			}
		})
	}

	t.Run("a request sent slowly still passes", func(t *testing.T) {
		resp, body := e.send(t, "127.0.0.1", "GET /v1/products HTTP/1.1\r\n", "Host: shop\r\nX-Note: fine\tand tab\r\n", "Connection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %s, want 200", resp.StatusCode, body)
		}
	})
}

// isProblem reports whether an answer is an RFC 9457 problem document of
// the given status.
func isProblem(h http.Header, body []byte, status int) bool {
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	return strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") &&
		json.Unmarshal(body, &p) == nil && p.Status == status && p.Type != "" && p.Title != ""
}

// edge is HAProxy running the edge job's configuration on a free port.
type edge struct {
	addr, stats string
	logs        *syncBuffer
}

// waitLog returns the JSON access log line of the request with the given
// id, decoded and as written, waiting a few seconds for it (HAProxy writes
// it after the answer).
func (e *edge) waitLog(t *testing.T, requestID string) (map[string]any, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil && entry["request_id"] == requestID {
				return entry, line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JSON line of HAProxy's log names request %s:\n%s", requestID, e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// statsPassword stands in for stats_password of nomad/jobs/edge.
const statsPassword = "e2e-stats-password"

// startEdge renders nomad/edge.nomad.hcl's templates (nomad job run
// -output), points its backend at a net/http server that echoes the
// forwarding headers it receives, and starts HAProxy on them.
func startEdge(t *testing.T) *edge {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		haproxy = "/usr/sbin/haproxy"
		if _, err := os.Stat(haproxy); err != nil {
			t.Fatal("haproxy is needed (Debian's haproxy package)")
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(toolsBin(t, root), "nomad"), "job", "run", "-output", "-var", "image=mylittleshopping/haproxy:test", filepath.Join(root, "nomad/edge.nomad.hcl")).Output()
	if err != nil {
		t.Fatalf("nomad job run -output: %v", err)
	}
	var job struct {
		Job struct {
			TaskGroups []struct {
				Tasks []struct {
					Templates []struct {
						DestPath     string
						EmbeddedTmpl string
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &job); err != nil {
		t.Fatal(err)
	}

	// In the cluster the edge reaches the aggregator in the mesh: a CA of
	// the test's own stands in for Consul's.
	dir := t.TempDir()
	meshCA, serverCert := testMesh(t, dir)
	aggregator := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			return
		}
		seen := map[string][]string{}
		for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Client-Address", "X-Request-Id"} {
			seen[h] = r.Header.Values(h)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen)
	}))
	aggregator.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: meshCA}
	aggregator.StartTLS()
	t.Cleanup(aggregator.Close)

	ports := freePorts(t, 3)
	addr := fmt.Sprintf("127.0.0.1:%d", ports["0"])
	stats := fmt.Sprintf("127.0.0.1:%d", ports["2"])
	replacer := strings.NewReplacer(
		`{{ env "NOMAD_ADDR_http" }}`, addr,
		`{{ env "NOMAD_ADDR_admin" }}`, fmt.Sprintf("127.0.0.1:%d", ports["1"]),
		`{{ env "NOMAD_ADDR_stats" }}`, stats,
		`{{ with nomadVar "nomad/jobs/edge" }}{{ .stats_password }}{{ end }}`, statsPassword,
		`{{ env "NOMAD_TASK_DIR" }}`, dir,
		`{{ env "NOMAD_SECRETS_DIR" }}`, dir,
		`{{ env "NOMAD_ALLOC_ID" }}`, fmt.Sprintf("e2e-%d", ports["0"]),
	)
	// The instances come from Consul's catalogue in the cluster; here, the
	// one stand-in.
	serverTemplate := regexp.MustCompile(`(?s)\{\{- range service "aggregator" \}\}.*?\{\{- end \}\}`)
	for _, tmpl := range job.Job.TaskGroups[0].Tasks[0].Templates {
		if strings.HasPrefix(filepath.Base(tmpl.DestPath), "mesh") {
			continue // testMesh wrote them
		}
		text := replacer.Replace(tmpl.EmbeddedTmpl)
		text = serverTemplate.ReplaceAllString(text, "\n  server agg1 "+strings.TrimPrefix(aggregator.URL, "https://"))
		if strings.Contains(text, "{{") {
			t.Fatalf("%s: template directives left: %s", tmpl.DestPath, text)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(tmpl.DestPath)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	logs := &syncBuffer{}
	cmd := exec.Command(haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"), "-f", filepath.Join(dir, "stats.cfg"))
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy's output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not listening on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &edge{addr: addr, stats: stats, logs: logs}
}

// send writes a request on the wire as it is (an HTTP client would refuse
// to), from the local address from, in parts with a pause between them,
// and reads the last answer.
func (e *edge) send(t *testing.T, from string, parts ...string) (*http.Response, []byte) {
	t.Helper()
	return sendRaw(t, e.addr, from, parts...)
}

// sendRaw writes parts to addr from the local address from (any of
// 127.0.0.0/8 on Linux: another client, as far as the edge can tell) and
// returns the last answer on the connection.
func sendRaw(t *testing.T, addr, from string, parts ...string) (*http.Response, []byte) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	for i, p := range parts {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := io.WriteString(conn, p); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(conn)
	// One answer per request written: the last is the one that matters.
	n := strings.Count(strings.Join(parts, ""), " HTTP/1.1\r\n")
	var resp *http.Response
	var body []byte
	for i := 0; i < max(n, 1); i++ {
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Close {
			break
		}
	}
	return resp, body
}

// testMesh writes the edge's mesh files into dir (mesh-ca.pem, the CA;
// mesh.pem, the edge's certificate and key) and returns the CA's pool and
// a server certificate it signed, for the stand-in aggregator.
func testMesh(t *testing.T, dir string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e mesh CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", b)
	}
	edgeDER, edgeKey := issue(2, "edge")
	if err := os.WriteFile(filepath.Join(dir, "mesh-ca.pem"), pemOf("CERTIFICATE", caDER), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mesh.pem"), append(pemOf("CERTIFICATE", edgeDER), keyPEM(edgeKey)...), 0o600); err != nil {
		t.Fatal(err)
	}
	aggDER, aggKey := issue(3, "aggregator")
	cert, err := tls.X509KeyPair(pemOf("CERTIFICATE", aggDER), keyPEM(aggKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, cert
}

// checkStatsPassword asks HAProxy's stats page at addr with no password, a
// wrong one, the right one for another user, and the operator's: only the
// last is let in.
func checkStatsPassword(t *testing.T, addr, password string) {
	t.Helper()
	for _, c := range []struct {
		user, password string
		want           int
	}{{"", "", 401}, {"operator", "wrong", 401}, {"admin", password, 401}, {"operator", password, 200}} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/stats", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("stats as %q: %d, want %d", c.user, resp.StatusCode, c.want)
		}
	}
}
