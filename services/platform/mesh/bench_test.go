package mesh

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mylittleshopping/shop/services/platform/porttest"
)

// BenchmarkCall is one call between two services on loopback, in the mesh
// (mutual TLS with the leaves of a real Consul agent, the caller
// authorised by its intentions, over the mesh transport) and in
// plain HTTP/1.1, as the services call each other without the mesh;
// sequential (the latency a saga's chain of calls pays) and parallel.
// Target: a handshake per new connection only (kept-alive HTTP/1.1), so the
// mesh's call stays within 30 % of plain here, where a call does no work;
// behind it the shop's calls do (make bench-mesh: below 10 %).
func BenchmarkCall(b *testing.B) {
	srv, c := startConsul(b)
	intention(b, c, "orders", map[string]string{"aggregator": string(api.IntentionActionAllow)})
	server, _ := join(b, srv, "orders")
	caller, _ := join(b, srv, "aggregator")
	meshAddr := serve(b, server)
	meshClient := client(caller)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", "orders")
	})}
	go plain.Serve(ln)
	b.Cleanup(func() { plain.Close() })
	plainClient := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 5 * time.Second}
	plainAddr := ln.Addr().String()

	sideBySide(b, 1, nil,
		side{"plain", func() error { return callOK(plainClient, plainAddr) }},
		side{"mesh", func() error { return callOK(meshClient, meshAddr) }})
}

func callOK(c *http.Client, addr string) error {
	if code, body, err := call(c, "orders", addr); err != nil || code != http.StatusOK {
		return fmt.Errorf("%d %s %v", code, body, err)
	}
	return nil
}

// side is one way of making the same request (plain, mesh).
type side struct {
	name string
	do   func() error
}

// sideBySide benchmarks each side's request sequential/<side>, then in
// parallel parallel/<side> (GOMAXPROCS×parallelism clients), so that the
// two sides of one mode run next to each other in time. A non-nil cpu
// is a process's CPU time so far, reported per request as cpu-µs/op.
func sideBySide(b *testing.B, parallelism int, cpu func() time.Duration, sides ...side) {
	metered := cpu != nil
	if !metered {
		cpu = func() time.Duration { return 0 }
	}
	report := func(b *testing.B, from time.Duration) {
		if metered {
			b.ReportMetric(float64(cpu()-from)/float64(b.N)/1e3, "cpu-µs/op")
		}
	}
	for _, sd := range sides {
		b.Run("sequential/"+sd.name, func(b *testing.B) {
			if err := sd.do(); err != nil {
				b.Fatal(err)
			}
			from := cpu()
			for b.Loop() {
				if err := sd.do(); err != nil {
					b.Fatal(err)
				}
			}
			report(b, from)
		})
	}
	for _, sd := range sides {
		b.Run("parallel/"+sd.name, func(b *testing.B) {
			if err := sd.do(); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(parallelism)
			from := cpu()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sd.do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			report(b, from)
		})
	}
}

// procCPU is the CPU time process pid's threads have taken so far, from
// /proc (nanoseconds, where /proc/<pid>/stat counts clock ticks).
func procCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(raw)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// BenchmarkEdgeHop is the one call inside a browse that the aggregator
// answers from its micro-cache: HAProxy's request to the aggregator, with
// a product page's answer (7 KB of JSON, with its Content-Length, as
// httpx.WriteJSON writes it). The same HAProxy (Debian's 2.6, the
// edge's image's, on PATH) forwards a client's kept-alive requests to a
// Go server in plain HTTP and, on its other port, with mutual TLS as the
// edge does (the edge's Connect leaf, the CA roots, verify required) to
// the mesh's server (its tls.Config, the caller authorised by its
// intentions); the two differ only by the mesh. Sequential: the latency
// it adds to a request; parallel: on a busy machine, its CPU; and
// cpu-µs/op, HAProxy's own CPU time per request, the figure make
// bench-mesh reads from the live edge's cgroup. It finds less than the
// live edge does: HAProxy +5 to +11 µs a request here, +30 to +40 µs
// there, whose configuration is fuller and whose server is a process of
// its own. Coalescing each answer into one TLS record, or its records
// into one write, moved this figure by 2-3 µs, within its noise.
// Target: the mesh's hop within 10 % of a cached browse's p50 through the
// whole shop (make bench-mesh reports both).
func BenchmarkEdgeHop(b *testing.B) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		b.Fatalf("haproxy is not on PATH (make tools installs Debian's): %v", err)
	}
	srv, c := startConsul(b)
	intention(b, c, "aggregator", map[string]string{"edge": string(api.IntentionActionAllow)})
	agg, _ := join(b, srv, "aggregator")

	page := productPage(7 << 10)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", agg.ServerTLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	meshSrv := &http.Server{Handler: agg.Authorize(handler), ConnContext: agg.ConnContext}
	go meshSrv.Serve(ln)
	b.Cleanup(func() { meshSrv.Close() })
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	plainSrv := &http.Server{Handler: handler}
	go plainSrv.Serve(pln)
	b.Cleanup(func() { plainSrv.Close() })

	// The edge's identity and the roots, as Nomad renders them for it.
	dir := b.TempDir()
	leaf, _, err := c.Agent().ConnectCALeaf("edge", nil)
	if err != nil {
		b.Fatal(err)
	}
	roots, _, err := c.Agent().ConnectCARoots(nil)
	if err != nil {
		b.Fatal(err)
	}
	var ca strings.Builder
	for _, r := range roots.Roots {
		ca.WriteString(r.RootCertPEM)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	crt := write("mesh.pem", leaf.CertPEM+leaf.PrivateKeyPEM)
	caFile := write("mesh-ca.pem", ca.String())
	plainPort, meshPort := porttest.Free(b), porttest.Free(b)
	cfg := write("haproxy.cfg", fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 35s
  timeout http-keep-alive 10s
frontend plain
  bind 127.0.0.1:%d
  default_backend plain
backend plain
  server agg %s
frontend mesh
  bind 127.0.0.1:%d
  default_backend mesh
backend mesh
  default-server ssl verify required ca-file %s crt %s
  server agg %s
`, plainPort, pln.Addr(), meshPort, caFile, crt, ln.Addr()))
	cmd := exec.Command(haproxy, "-db", "-f", cfg)
	logFile, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // every parallel client keeps its connection
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(port int) error {
		resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/products?limit=20", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(page)) {
			return fmt.Errorf("%d, %d bytes, %v", resp.StatusCode, n, err)
		}
		return nil
	}
	for _, port := range []int{plainPort, meshPort} {
		deadline := time.Now().Add(10 * time.Second)
		for err := get(port); err != nil; err = get(port) {
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logFile.Name())
				b.Fatalf("haproxy on %d: %v\n%s", port, err, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Enough clients to keep every core busy in parallel.
	sideBySide(b, 4, func() time.Duration { return procCPU(cmd.Process.Pid) }, side{"plain", func() error { return get(plainPort) }}, side{"mesh", func() error { return get(meshPort) }})
}

// productPage is JSON of about n bytes shaped like a page of products.
func productPage(n int) []byte {
	type item struct {
		ID, Name, Description, Currency string
		Price, Stock                    int
	}
	var items []item
	for i := 0; ; i++ {
		items = append(items, item{ID: fmt.Sprintf("0193b7c2-%04x-7000-8000-%012x", i, i), Name: fmt.Sprintf("Stainless kettle %d", i),
			Description: strings.Repeat("A kettle that boils. ", 10), Currency: "EUR", Price: 2999 + i, Stock: 100 + i})
		if b, _ := json.Marshal(map[string]any{"items": items}); len(b) >= n {
			return append(b, '\n')
		}
	}
}
