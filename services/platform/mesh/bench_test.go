package mesh

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
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

	for _, tc := range []struct {
		name string
		c    *http.Client
		addr string
	}{{"plain", plainClient, plainAddr}, {"mesh", meshClient, meshAddr}} {
		once := func(b *testing.B) {
			if code, body, err := call(tc.c, "orders", tc.addr); err != nil || code != http.StatusOK {
				b.Fatalf("%d %s %v", code, body, err)
			}
		}
		b.Run(tc.name+"/sequential", func(b *testing.B) {
			once(b)
			b.ResetTimer()
			for b.Loop() {
				once(b)
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			once(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code, _, err := call(tc.c, "orders", tc.addr); err != nil || code != http.StatusOK {
						b.Errorf("%d %v", code, err)
						return
					}
				}
			})
		})
	}
}
