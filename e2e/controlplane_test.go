package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stepControlPlane tries the control plane as any local process would —
// no token, or the token of one workload — and then as the operator.
func stepControlPlane(t *testing.T, w *world) {
	anonymous := ""
	t.Run("without a token, Nomad refuses jobs and variables", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/jobs", ""},
			{"GET", "/v1/var/nomad/jobs/auth", ""},
			{"DELETE", "/v1/job/auth", ""},
			{"POST", "/v1/job/auth/scale", `{"Count": 0, "Target": {"Group": "auth"}}`},
		} {
			if code, body := w.c.as(c.method, w.c.nomadURL+c.path, "X-Nomad-Token", anonymous, strings.NewReader(c.body)); code != http.StatusForbidden {
				t.Errorf("%s %s without a token: %d %s, want 403", c.method, c.path, code, body)
			}
		}
		// A list answers with what the token may see: nothing.
		if code, body := w.c.as("GET", w.c.nomadURL+"/v1/vars?prefix=nomad/jobs", "X-Nomad-Token", anonymous, nil); code != http.StatusForbidden && body != "[]" {
			t.Errorf("the variables listed without a token: %d %s, want none", code, body)
		}
	})

	t.Run("without a token, Consul refuses a rogue auth, the KV and the CA", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "/v1/agent/service/register", `{"Name": "auth", "Port": 1}`},
			{"PUT", "/v1/catalog/register", `{"Node": "rogue", "Address": "127.0.0.2", "Service": {"Service": "auth", "Port": 1}}`},
			// A leaf of a name no workload of this host asked for: Consul's
			// agent hands out a leaf it has cached to anyone, token or not
			// (README, "The control plane"), so a cached name proves nothing.
			{"GET", "/v1/agent/connect/ca/leaf/rogue", ""},
			{"PUT", "/v1/connect/ca/configuration", `{"Provider": "consul", "Config": {}}`},
			{"PUT", "/v1/kv/mylittleshopping/backup/orders/full", `{}`},
			{"PUT", "/v1/config", `{"Kind": "service-intentions", "Name": "payment", "Sources": [{"Name": "*", "Action": "allow"}]}`},
		} {
			if code, body := w.c.as(c.method, w.c.consulURL+c.path, "X-Consul-Token", anonymous, strings.NewReader(c.body)); code != http.StatusForbidden {
				t.Errorf("%s %s without a token: %d %s, want 403", c.method, c.path, code, body)
			}
		}
		// The catalogue has no second auth.
		var instances []consulEntry
		if err := getJSON(w.c.consulURL+"/v1/health/service/auth", &instances); err != nil {
			t.Fatal(err)
		}
		for _, e := range instances {
			if e.Service.Port == 1 {
				t.Errorf("a rogue auth is registered: %+v", e.Service)
			}
		}
	})

	// The payment task's own tokens, as its files hold them: what a
	// compromised payment could do.
	nomadToken, consulToken := w.c.taskTokens(t, "payment")
	t.Run("payment's identity reads payment's variables, not auth's", func(t *testing.T) {
		for path, want := range map[string]int{
			"nomad/jobs/payment":     http.StatusOK,
			"shop/payment/processor": http.StatusOK,
			"shop/payment/db-login":  http.StatusOK,
			"nomad/jobs/auth":        http.StatusForbidden,
			"shop/auth/db-login":     http.StatusForbidden,
			"nomad/jobs/payment-db":  http.StatusForbidden,
			"shop/payment-db/s3":     http.StatusForbidden,
		} {
			if code, body := w.c.as("GET", w.c.nomadURL+"/v1/var/"+path, "X-Nomad-Token", nomadToken, nil); code != want {
				t.Errorf("payment's identity reads %s: %d %s, want %d", path, code, body, want)
			}
		}
	})

	t.Run("payment's Consul token is payment's: its own leaf, no registration as auth", func(t *testing.T) {
		for _, c := range []struct {
			method, path, body string
			want               int
		}{
			{"GET", "/v1/agent/connect/ca/leaf/payment", "", http.StatusOK},
			{"GET", "/v1/agent/connect/ca/leaf/rogue", "", http.StatusForbidden},
			{"PUT", "/v1/agent/service/register", `{"Name": "auth", "Port": 1}`, http.StatusForbidden},
			{"PUT", "/v1/kv/mylittleshopping/backup/orders/full", `{}`, http.StatusForbidden},
		} {
			if code, body := w.c.as(c.method, w.c.consulURL+c.path, "X-Consul-Token", consulToken, strings.NewReader(c.body)); code != c.want {
				t.Errorf("%s %s with payment's token: %d %s, want %d", c.method, c.path, code, body, c.want)
			}
		}
	})

	t.Run("the agents speak HTTPS alone, with certificates of the cluster's CAs", func(t *testing.T) {
		for _, base := range []string{w.c.nomadURL, w.c.consulURL} {
			plain := "http://" + strings.TrimPrefix(base, "https://")
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			if resp, err := hc.Get(plain + "/v1/status/leader"); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("plain HTTP to %s: %d, want a refusal", plain, resp.StatusCode)
				}
			}
			if _, err := hc.Get(base + "/v1/status/leader"); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("HTTPS to %s checked against the system's CAs: %v, want a certificate error", base, err)
			}
			var leader string
			if err := getJSON(base+"/v1/status/leader", &leader); err != nil || leader == "" {
				t.Errorf("HTTPS to %s with the cluster's CA: %q %v", base, leader, err)
			}
		}
	})

	t.Run("gossip is encrypted", func(t *testing.T) {
		var consul struct{ Stats map[string]map[string]string }
		if err := getJSON(w.c.consulURL+"/v1/agent/self", &consul); err != nil {
			t.Fatal(err)
		}
		var nomad struct{ Stats map[string]map[string]string }
		if err := getJSON(w.c.nomadURL+"/v1/agent/self", &nomad); err != nil {
			t.Fatal(err)
		}
		if consul.Stats["serf_lan"]["encrypted"] != "true" || nomad.Stats["serf"]["encrypted"] != "true" {
			t.Errorf("gossip encrypted: consul %q, nomad %q", consul.Stats["serf_lan"]["encrypted"], nomad.Stats["serf"]["encrypted"])
		}
	})

	t.Run("HAProxy's stats want the operator's password", func(t *testing.T) {
		password := strings.TrimSpace(w.c.nomad(t, "var", "get", "-item=stats_password", "nomad/jobs/edge"))
		checkStatsPassword(t, w.c.allocPort(t, "edge", "stats"), password)
	})
}

// as sends a request with header (a token) set to value ("" is no token),
// and returns the status and the start of the body.
func (c *cluster) as(method, url, header, value string, body io.Reader) (int, string) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err.Error()
	}
	req.Header[header] = []string{value}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

// taskTokens reads the Nomad identity and the Consul token of job's first
// running task (named as its job) from its secrets folder on this host.
func (c *cluster) taskTokens(t *testing.T, job string) (nomad, consul string) {
	t.Helper()
	dir := filepath.Join(c.stateDir, "nomad", "data", "alloc", c.runningAlloc(t, job), job, "secrets")
	n, err := os.ReadFile(filepath.Join(dir, "nomad_token"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(filepath.Join(dir, "consul_token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(n)), strings.TrimSpace(string(k))
}

// runningAlloc is the id of job's first running allocation.
func (c *cluster) runningAlloc(t *testing.T, job string) string {
	t.Helper()
	as, err := c.allocs(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.ClientStatus == "running" {
			return a.ID
		}
	}
	t.Fatalf("%s has no running allocation", job)
	return ""
}

// allocPort is the address of the port label of job's first running
// allocation.
func (c *cluster) allocPort(t *testing.T, job, label string) string {
	t.Helper()
	var alloc struct {
		AllocatedResources struct {
			Shared struct {
				Ports []struct {
					Label  string
					Value  int
					HostIP string
				}
			}
		}
	}
	if err := getJSON(c.nomadURL+"/v1/allocation/"+c.runningAlloc(t, job), &alloc); err != nil {
		t.Fatal(err)
	}
	for _, p := range alloc.AllocatedResources.Shared.Ports {
		if p.Label == label {
			return fmt.Sprintf("%s:%d", p.HostIP, p.Value)
		}
	}
	t.Fatalf("%s's allocation has no port %s", job, label)
	return ""
}
