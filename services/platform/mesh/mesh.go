// Package mesh is the shop's service mesh: Consul Connect, natively (no
// sidecar). A service serves its API over mutual TLS with the leaf
// certificate Consul issues to it, accepts only callers whose certificate
// the Connect CA signed, and lets a caller in only when Consul's intentions
// allow its SPIFFE identity to call this service; a client presents its own
// leaf and checks that the server is the service it meant to call, not just
// any holder of a mesh certificate.
//
// The leaf and the CA roots are watched with blocking queries on the local
// Consul agent and swapped in place: a rotation (a new leaf before the old
// expires, a new CA) needs no restart, and connections made before it stay
// valid until they close.
//
// Consul documents native integration as deprecated in favour of Envoy
// sidecars. This package is the one place that would change: where Envoy
// exists, a sidecar would terminate the same mTLS and enforce the same
// intentions, and the services would serve plain HTTP on loopback again.
package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Config is a service's part of the mesh configuration.
type Config struct {
	// ConsulAddr is the local Consul agent's HTTP API. Empty: no mesh, the
	// service serves and calls plain HTTP (its own tests, a process run by
	// hand).
	ConsulAddr string `env:"MESH_CONSUL_HTTP_ADDR" default:""`
	// ConsulToken is the service's Consul ACL token: write on its own
	// service (its leaf certificate, the intentions about it), read on the
	// catalogue. Nomad puts the task's token, from its workload identity,
	// in CONSUL_HTTP_TOKEN.
	ConsulToken string `env:"CONSUL_HTTP_TOKEN" default:"" secret:"true"`
	// ConsulCAFile is the CA that an https ConsulAddr's certificate is
	// checked against; Nomad copies the agent's into a Connect native
	// task's secrets and names it in CONSUL_CACERT. Empty: the system's.
	ConsulCAFile string `env:"CONSUL_CACERT" default:""`
	// AuthorizeTTL is how long one intention decision is reused for a
	// caller: a changed intention takes effect on open connections within
	// it.
	AuthorizeTTL time.Duration `env:"MESH_AUTHORIZE_TTL" default:"2s"`
}

// Enabled says whether the configuration asks for the mesh.
func (c Config) Enabled() bool { return c.ConsulAddr != "" }

// Mesh is one service's identity in the mesh: its current leaf
// certificate, the CA roots it trusts, and the decisions of Consul's
// intentions about its callers.
type Mesh struct {
	service string
	agent   *api.Agent
	log     hclog.Logger
	cfg     Config

	leaf  atomic.Pointer[tls.Certificate]
	roots atomic.Pointer[rootSet]
	authz *authorizer
}

// rootSet is one answer of the CA roots endpoint.
type rootSet struct {
	pool        *x509.CertPool
	trustDomain string
	ids         []string
}

// Join is New when cfg enables the mesh, and nil (plain HTTP: every
// method of a nil *Mesh that a service calls says so) when it does not.
func Join(ctx context.Context, cfg Config, service string, log hclog.Logger) (*Mesh, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	return New(ctx, cfg, service, log)
}

// New fetches service's leaf certificate and the CA roots from the local
// agent, waiting (until ctx is done) while the agent is not there yet, and
// keeps both current until ctx is done.
func New(ctx context.Context, cfg Config, service string, log hclog.Logger) (*Mesh, error) {
	if !cfg.Enabled() {
		return nil, errors.New("mesh: no Consul agent address (MESH_CONSUL_HTTP_ADDR)")
	}
	if service == "" {
		return nil, errors.New("mesh: no service name")
	}
	if cfg.AuthorizeTTL <= 0 {
		cfg.AuthorizeTTL = 2 * time.Second
	}
	client, err := api.NewClient(&api.Config{Address: cfg.ConsulAddr, Token: cfg.ConsulToken, TLSConfig: api.TLSConfig{CAFile: cfg.ConsulCAFile}})
	if err != nil {
		return nil, fmt.Errorf("mesh: consul client: %w", err)
	}
	m := &Mesh{service: service, agent: client.Agent(), log: log.Named("mesh"), cfg: cfg}
	m.authz = newAuthorizer(m.agent, service, cfg.AuthorizeTTL)

	var rootsIdx, leafIdx uint64
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		if rootsIdx == 0 {
			rootsIdx, err = m.fetchRoots(ctx, 0)
		}
		if err == nil && leafIdx == 0 {
			leafIdx, err = m.fetchLeaf(ctx, 0)
		}
		if err == nil {
			break
		}
		m.log.Warn("waiting for the Consul agent's certificates", "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mesh: %s's certificates: %w", service, err)
		case <-time.After(wait):
		}
	}
	go m.watch(ctx, "roots", rootsIdx, m.fetchRoots)
	go m.watch(ctx, "leaf", leafIdx, m.fetchLeaf)
	m.log.Info("in the mesh", "identity", m.Identity(service))
	return m, nil
}

// Service is the name this mesh identity was issued for.
func (m *Mesh) Service() string { return m.service }

// Identity is the SPIFFE identity a certificate of service carries in this
// trust domain (the default namespace and this agent's datacenter).
func (m *Mesh) Identity(service string) string {
	return m.identityOf(service, m.datacenter())
}

func (m *Mesh) identityOf(service, dc string) string {
	return fmt.Sprintf("spiffe://%s/ns/default/dc/%s/svc/%s", m.roots.Load().trustDomain, dc, service)
}

// datacenter is the datacenter in this service's own leaf certificate.
func (m *Mesh) datacenter() string {
	leaf := m.leaf.Load()
	if leaf == nil || leaf.Leaf == nil {
		return ""
	}
	for _, u := range leaf.Leaf.URIs {
		if id, err := parseIdentity(u); err == nil {
			return id.dc
		}
	}
	return ""
}

// watch keeps one of the agent's answers current with blocking queries:
// fetch returns at once when the answer changed since idx, or after the
// wait. Errors are retried with a growing pause.
func (m *Mesh) watch(ctx context.Context, what string, idx uint64, fetch func(context.Context, uint64) (uint64, error)) {
	pause := time.Second
	for ctx.Err() == nil {
		next, err := fetch(ctx, idx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("watching the Consul agent failed; retrying", "what", what, "error", err, "in", pause.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			continue
		}
		pause = time.Second
		idx = next
	}
}

func (m *Mesh) fetchRoots(ctx context.Context, idx uint64) (uint64, error) {
	list, meta, err := m.agent.ConnectCARoots((&api.QueryOptions{WaitIndex: idx, WaitTime: 5 * time.Minute}).WithContext(ctx))
	if err != nil {
		return idx, err
	}
	if meta.LastIndex == idx && m.roots.Load() != nil {
		return idx, nil
	}
	set := &rootSet{pool: x509.NewCertPool(), trustDomain: list.TrustDomain}
	for _, r := range list.Roots {
		if !set.pool.AppendCertsFromPEM([]byte(r.RootCertPEM)) {
			return idx, fmt.Errorf("CA root %s is not a PEM certificate", r.ID)
		}
		set.ids = append(set.ids, r.ID)
	}
	if len(set.ids) == 0 || set.trustDomain == "" {
		return idx, errors.New("the Connect CA has no root yet")
	}
	old := m.roots.Swap(set)
	if old != nil {
		m.log.Info("CA roots changed", "roots", strings.Join(set.ids, ","), "active", list.ActiveRootID)
	}
	return meta.LastIndex, nil
}

func (m *Mesh) fetchLeaf(ctx context.Context, idx uint64) (uint64, error) {
	leaf, meta, err := m.agent.ConnectCALeaf(m.service, (&api.QueryOptions{WaitIndex: idx, WaitTime: 5 * time.Minute}).WithContext(ctx))
	if err != nil {
		return idx, err
	}
	if meta.LastIndex == idx && m.leaf.Load() != nil {
		return idx, nil
	}
	cert, err := keyPair(leaf.CertPEM, leaf.PrivateKeyPEM)
	if err != nil {
		return idx, fmt.Errorf("leaf certificate of %s: %w", m.service, err)
	}
	if old := m.leaf.Swap(cert); old != nil {
		m.log.Info("leaf certificate renewed", "serial", leaf.SerialNumber, "valid_before", leaf.ValidBefore.UTC().Format(time.RFC3339))
	}
	return meta.LastIndex, nil
}

// keyPair parses a leaf (its PEM may carry intermediates after it: a CA
// rotation cross-signs the new root) and its key.
func keyPair(certPEM, keyPEM string) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		block, _ := pem.Decode([]byte(certPEM))
		if block == nil {
			return nil, errors.New("no PEM block")
		}
		if cert.Leaf, err = x509.ParseCertificate(block.Bytes); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// identity is a parsed SPIFFE service identity of Consul.
type identity struct {
	trustDomain, ns, dc, service string
	// serial is the certificate's (hex, colon-separated), when the
	// identity was read from one.
	serial string
	// uri is String's, kept by parseIdentity.
	uri string
}

func (id identity) String() string {
	if id.uri != "" {
		return id.uri
	}
	return fmt.Sprintf("spiffe://%s/ns/%s/dc/%s/svc/%s", id.trustDomain, id.ns, id.dc, id.service)
}

// parseIdentity reads spiffe://<trust domain>/ns/<ns>/dc/<dc>/svc/<service>.
func parseIdentity(u *url.URL) (identity, error) {
	if u == nil || u.Scheme != "spiffe" || u.Host == "" {
		return identity{}, fmt.Errorf("not a SPIFFE identity: %v", u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 6 || parts[0] != "ns" || parts[2] != "dc" || parts[4] != "svc" || parts[5] == "" {
		return identity{}, fmt.Errorf("not a Consul service identity: %s", u)
	}
	id := identity{trustDomain: u.Host, ns: parts[1], dc: parts[3], service: parts[5]}
	id.uri = id.String()
	return id, nil
}

// peerIdentity is the service identity in a verified peer certificate.
func peerIdentity(cert *x509.Certificate) (identity, error) {
	for _, u := range cert.URIs {
		if id, err := parseIdentity(u); err == nil {
			id.serial = serialHex(cert)
			return id, nil
		}
	}
	return identity{}, fmt.Errorf("the certificate of %q carries no Consul service identity", cert.Subject.CommonName)
}

// serialHex is a certificate's serial as Consul writes it: hex bytes
// separated by colons.
func serialHex(cert *x509.Certificate) string {
	b := cert.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}
