package mesh

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// ServerTLSConfig is the TLS configuration of this service's API listener:
// its current leaf, callers' certificates required and verified against
// the current CA roots, and each caller's identity authorised by Consul's
// intentions before the handshake completes. A refused caller is logged
// with its identity.
func (m *Mesh) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			leaf := m.leaf.Load()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*leaf},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.roots.Load().pool,
				NextProtos:   []string{"h2", "http/1.1"},
				VerifyConnection: func(cs tls.ConnectionState) error {
					caller, err := m.caller(cs)
					if err != nil {
						m.log.Warn("refused a connection", "error", err)
						return err
					}
					return m.authz.check(caller, m.log)
				},
			}, nil
		},
	}
}

// caller is the mesh identity of a verified TLS peer, which must be of this
// trust domain.
func (m *Mesh) caller(cs tls.ConnectionState) (identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return identity{}, errors.New("mesh: no client certificate")
	}
	id, err := peerIdentity(cs.PeerCertificates[0])
	if err != nil {
		return identity{}, fmt.Errorf("mesh: %w", err)
	}
	return id, m.ofTrustDomain(id)
}

// ofTrustDomain says whether a caller is of this mesh's trust domain.
func (m *Mesh) ofTrustDomain(id identity) error {
	if td := m.roots.Load().trustDomain; id.trustDomain != td {
		return fmt.Errorf("mesh: caller %s is not of the trust domain %s", id, td)
	}
	return nil
}

// ClientTLSConfig is the TLS configuration of calls to target: this
// service's current leaf as its client certificate, and the server
// verified against the current CA roots and required to carry target's
// identity.
func (m *Mesh) ClientTLSConfig(target string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.leaf.Load(), nil
		},
		// The chain and the identity are checked by VerifyConnection
		// against the roots of the moment; the host name is an address
		// found in Consul, which no mesh certificate names.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return m.verifyServer(cs, target)
		},
	}
}

func (m *Mesh) verifyServer(cs tls.ConnectionState, target string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("mesh: %s sent no certificate", target)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	roots := m.roots.Load()
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("mesh: the server called as %s: %w", target, err)
	}
	id, err := peerIdentity(cs.PeerCertificates[0])
	if err != nil {
		return fmt.Errorf("mesh: the server called as %s: %w", target, err)
	}
	if id.trustDomain != roots.trustDomain || id.service != target {
		return fmt.Errorf("mesh: the server called as %s is %s", target, id)
	}
	return nil
}

// Transport returns a RoundTripper for calls inside the mesh: a request
// for "http://<service>.service.consul/…" (its Host, which the discovery
// transport keeps while it puts an instance's address in the URL) goes
// over mutual TLS to that service, checked to be it, on HTTP/1.1
// connections kept alive (at least minIdlePerInstance idle per instance). base is cloned once
// per service; requests for other hosts go through base untouched. A nil
// base is a clone of http.DefaultTransport; a nil m returns base: plain
// HTTP.
func (m *Mesh) Transport(base *http.Transport) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	if m == nil {
		return base
	}
	return &transport{m: m, base: base, byTarget: map[string]*http.Transport{}}
}

// minIdlePerInstance is the least number of idle connections the mesh
// transport keeps per instance (net/http's default is 2: under more
// concurrent calls than that, each call beyond would pay a handshake).
const minIdlePerInstance = 64

type transport struct {
	m    *Mesh
	base *http.Transport

	mu       sync.Mutex
	byTarget map[string]*http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	name, _, ok := strings.Cut(strings.ToLower(host), ".service.")
	if !ok || name == "" || req.URL.Scheme != "http" {
		return t.base.RoundTrip(req)
	}
	// A shallow copy with its own URL: the request is not ours to change,
	// and nothing else of it changes (req.Clone would copy its headers at
	// every call).
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Scheme = "https"
	out.URL = &u
	return t.target(name).RoundTrip(out)
}

func (t *transport) target(name string) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.byTarget[name]; ok {
		return tr
	}
	tr := t.base.Clone()
	tr.TLSClientConfig = t.m.ClientTLSConfig(name)
	// HTTP/1.1 on kept-alive connections, enough of them per instance that
	// a handshake stays rare under load: Go's HTTP/2 cost a call twice the
	// CPU of plain HTTP/1.1 (BenchmarkCall), HTTP/1.1 over TLS a quarter
	// more. The server still offers h2 to a client that asks.
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, minIdlePerInstance)
	t.byTarget[name] = tr
	return tr
}
