package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
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
type edge struct{ addr string }

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
	out, err := exec.Command(filepath.Join(toolsBin(t, root), "nomad"), "job", "run", "-output", filepath.Join(root, "nomad/edge.nomad.hcl")).Output()
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

	aggregator := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			return
		}
		seen := map[string][]string{}
		for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Client-Address"} {
			seen[h] = r.Header.Values(h)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen)
	}))
	t.Cleanup(aggregator.Close)

	dir := t.TempDir()
	ports := freePorts(t, 2)
	addr := fmt.Sprintf("127.0.0.1:%d", ports["0"])
	replacer := strings.NewReplacer(
		`{{ env "NOMAD_ADDR_http" }}`, addr,
		`{{ env "NOMAD_ADDR_admin" }}`, fmt.Sprintf("127.0.0.1:%d", ports["1"]),
		`{{ env "NOMAD_TASK_DIR" }}`, dir,
		`{{ env "NOMAD_ALLOC_ID" }}`, fmt.Sprintf("e2e-%d", ports["0"]),
	)
	// The instances come from Consul DNS in the cluster; here, the one
	// stand-in.
	serverTemplate := regexp.MustCompile(`(?m)^\s*server-template .*$`)
	for _, tmpl := range job.Job.TaskGroups[0].Tasks[0].Templates {
		text := replacer.Replace(tmpl.EmbeddedTmpl)
		text = serverTemplate.ReplaceAllString(text, "  server agg1 "+strings.TrimPrefix(aggregator.URL, "http://")+" check")
		if strings.Contains(text, "{{") {
			t.Fatalf("%s: template directives left: %s", tmpl.DestPath, text)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(tmpl.DestPath)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var logs bytes.Buffer
	cmd := exec.Command(haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
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
	return &edge{addr: addr}
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
