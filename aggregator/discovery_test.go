package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/httpapi"
	"github.com/mylittleshopping/shop/services/platform/discovery"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/porttest"
	"github.com/mylittleshopping/shop/services/platform/servicetest"
)

// startConsul starts a real Consul agent (consul/sdk/testutil runs the
// consul binary on PATH) and returns its API client and DNS address.
func startConsul(t *testing.T) (*api.Client, string) {
	t.Helper()
	srv, err := testutil.NewTestServerConfigT(t, func(c *testutil.TestServerConfig) {
		c.LogLevel = "warn"
		c.Connect = nil
		c.Peering = nil
	})
	if err != nil {
		t.Fatalf("start consul agent (is consul on PATH? make tools): %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// DNS answers an instance only once its node's serfHealth passes.
	srv.WaitForSerfCheck(t)
	consul, err := api.NewClient(&api.Config{Address: srv.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	return consul, "127.0.0.1:" + strconv.Itoa(srv.Config.Ports.DNS)
}

// testDiscovery: inventory gets a second instance that Consul believes
// healthy but that refuses connections. An aggregator resolving through
// Consul DNS (the default URLs, as every test's main aggregator does)
// retries its calls on the other instance — idempotent ones whatever
// failed, others because the connection was refused before anything was
// sent — so clients see nothing.
func testDiscovery(t *testing.T, st *stack) {
	dead := servicetest.Addr(t) // nothing listens there
	register(t, st.consul, "inventory", "inventory-dead", dead)
	// A short cache, so the new instance is seen at once.
	agg := st.startConsulAggregator(t, 0, map[string]string{"DISCOVERY_TTL_FLOOR": "100ms", "DISCOVERY_TTL_CAP": "100ms"})
	eventually(t, 10*time.Second, "two inventory instances in Consul DNS", func() error {
		in, err := discovery.New(discovery.Config{DNSAddr: st.consulDNS}, logging.NewNull()).Resolve(t.Context(), "inventory")
		if err != nil || len(in) != 2 {
			return fmt.Errorf("got %v, %v", in, err)
		}
		return nil
	})

	c := newClient(t, agg.URL)
	seller := st.newShopper(t, c, "seller")
	buyer := st.newShopper(t, c, "buyer")
	product := newProduct(t, seller, "Discovered decanter", 5400, 2)
	for range 6 {
		buyer.c.do("GET", "/v1/products/"+product.Id.String(), nil).want(t, http.StatusOK)
	}
	if logs := agg.Logs.String(); !strings.Contains(logs, `"@message":"retrying"`) || !strings.Contains(logs, dead) {
		t.Error("no call was retried away from the dead inventory instance; the test proves nothing")
	}
	buyer.addToCart(t, product.Id, 1)
	var o httpapi.Order
	buyer.checkout(t, "consul-1", cardOK).want(t, http.StatusCreated).decode(t, &o)
	if o.Status != orders.Confirmed || o.Payment == nil || o.Payment.Status != httpapi.PaymentSummaryStatusSucceeded {
		t.Errorf("got %s with payment %+v, want confirmed and paid", o.Status, o.Payment)
	}
}

// startConsulAggregator is an aggregator that finds every service, and
// auth's keys, through Consul DNS, with the default URLs.
func (s *stack) startConsulAggregator(t *testing.T, port int, overrides map[string]string) *aggregator {
	t.Helper()
	if port == 0 {
		port = porttest.Free(t)
	}
	env := s.aggregatorEnv(port, overrides)
	env["CONSUL_DNS_ADDR"] = s.consulDNS
	for _, k := range []string{"AGGREGATOR_AUTH_URL", "AGGREGATOR_INVENTORY_URL", "AGGREGATOR_ORDERS_URL", "AGGREGATOR_PAYMENT_URL", "AUTH_JWKS_URL"} {
		delete(env, k)
	}
	return s.startAggregatorEnv(t, port, env)
}

// register registers an instance with a passing TTL check, until the test
// ends.
func register(t *testing.T, consul *api.Client, name, id, addr string) {
	t.Helper()
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	check := id + ":ttl"
	if err := consul.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: name, Address: host, Port: port,
		Check: &api.AgentServiceCheck{CheckID: check, TTL: "10m"},
	}); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	t.Cleanup(func() { _ = consul.Agent().ServiceDeregister(id) })
	if err := consul.Agent().UpdateTTL(check, "test", api.HealthPassing); err != nil {
		t.Fatalf("pass %s: %v", check, err)
	}
}
