package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cluster is one local shop, brought up by `make up` with its own ports,
// state folder and Terraform state.
type cluster struct {
	root     string // the repository
	stateDir string // devcluster.sh's STATE: agents' data, volumes
	tfState  string
	env      []string // for make and the nomad CLI
	ports    map[string]int

	shopURL, mailURL, nomadURL, consulURL, dnsAddr string
	// edgePort and mailPort are also in ports; every port in ports must be
	// closed once the cluster is down.
}

// portVars are the local environment's port variables; each gets a free
// port.
var portVars = []string{
	"consul_http_port", "consul_dns_port", "consul_serf_lan_port", "consul_serf_wan_port",
	"consul_server_port", "consul_grpc_port", "consul_grpc_tls_port",
	"nomad_http_port", "nomad_rpc_port", "nomad_serf_port",
	"edge_port", "mailsink_port", "objectstore_port", "logs_port", "metrics_port",
}

// newCluster chooses the ports and folders of a cluster; nothing runs yet.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the folder must outlive a failed test when E2E_KEEP is
	// set, and postgres must traverse it (devcluster.sh sets 0711).
	dir, err := os.MkdirTemp("", "mls-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		root:     root,
		stateDir: filepath.Join(dir, "cluster"),
		tfState:  filepath.Join(dir, "terraform.tfstate"),
		ports:    freePorts(t, len(portVars)),
	}
	c.env = append(os.Environ(),
		"TF_STATE_FILE="+c.tfState,
		"TF_VAR_state_dir="+c.stateDir,
		// Far from the dev cluster's 20000-32000 and below the kernel's
		// ephemeral range, so that no other process takes a task's port.
		"TF_VAR_nomad_min_dynamic_port=13000",
		"TF_VAR_nomad_max_dynamic_port=13999",
		// The reconciliation after a restore acts on what is older than its
		// grace period (5 min by default): shorter here, above the recovery
		// loop's 40 s.
		`TF_VAR_aggregator_extra_env={"AGGREGATOR_RECONCILE_GRACE":"60s"}`,
		// OrderStuck after 30 s rather than 15 min: the alerts step makes
		// a stuck order and waits for the alert.
		"TF_VAR_order_stuck_seconds=30",
	)
	for i, v := range portVars {
		c.ports[v] = c.ports[strconv.Itoa(i)]
		delete(c.ports, strconv.Itoa(i))
		c.env = append(c.env, fmt.Sprintf("TF_VAR_%s=%d", v, c.ports[v]))
	}
	c.shopURL = fmt.Sprintf("http://127.0.0.1:%d", c.ports["edge_port"])
	c.mailURL = fmt.Sprintf("http://127.0.0.1:%d", c.ports["mailsink_port"])
	c.nomadURL = fmt.Sprintf("https://127.0.0.1:%d", c.ports["nomad_http_port"])
	c.consulURL = fmt.Sprintf("https://127.0.0.1:%d", c.ports["consul_http_port"])
	c.dnsAddr = fmt.Sprintf("127.0.0.1:%d", c.ports["consul_dns_port"])
	c.env = append(c.env, "NOMAD_ADDR="+c.nomadURL, "CONSUL_HTTP_ADDR="+c.consulURL, "NOMAD_CLI_SHOW_HINTS=0",
		"NOMAD_CACERT="+c.caFile("nomad"), "CONSUL_CACERT="+c.caFile("consul"))
	// Every call of the suite to Nomad's and Consul's APIs carries the
	// operator's token, as the README tells an operator to.
	base := http.DefaultTransport
	if o, ok := base.(*operatorTransport); ok {
		base = o.base
	}
	http.DefaultTransport = &operatorTransport{c: c, base: base}
	t.Logf("cluster: state %s, terraform state %s, shop %s, nomad %s, consul %s, dns %s, mail %s",
		c.stateDir, c.tfState, c.shopURL, c.nomadURL, c.consulURL, c.dnsAddr, c.mailURL)
	return c
}

// freePorts returns n distinct ports free for TCP and UDP, keyed "0".."n-1".
func freePorts(t *testing.T, n int) map[string]int {
	t.Helper()
	ports := make(map[string]int)
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, l)
		p := l.Addr().(*net.TCPAddr).Port
		// Consul listens on UDP too (DNS, serf).
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u.Close()
		ports[strconv.Itoa(len(ports))] = p
	}
	return ports
}

// make runs a make target of the repository with the cluster's
// environment, logging its output, and fails the test when it fails.
func (c *cluster) make(t *testing.T, timeout time.Duration, target string) string {
	t.Helper()
	out, err := c.run(t, timeout, "make", "-s", "-C", c.root, target)
	if err != nil {
		t.Fatalf("make %s: %v", target, err)
	}
	return out
}

// run runs a command with the cluster's environment and returns its
// output, logged line by line.
func (c *cluster) run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	return c.exec(t, timeout, true, name, args...)
}

// capture is run without logging the output, for commands whose output
// the caller sifts (a service's logs): a failed step's summary keeps the
// lines that say why it failed.
func (c *cluster) capture(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	return c.exec(t, timeout, false, name, args...)
}

func (c *cluster) exec(t *testing.T, timeout time.Duration, logOutput bool, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	if name != "make" {
		// make's scripts find the tokens themselves; the CLIs are the
		// operator's, with the operator's tokens.
		cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], "NOMAD_TOKEN="+c.token("nomad"), "CONSUL_HTTP_TOKEN="+c.token("consul"))
	}
	cmd.Dir = c.root
	// Its own process group, ended whole on the deadline: make, terraform
	// and the deploy scripts under them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// The agents started by make outlive it; they must not hold our pipes.
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for logOutput && sc.Scan() {
		t.Logf("  %s", sc.Text())
	}
	t.Logf("%s %s: %v (%s)", name, strings.Join(args, " "), errOrOK(err), time.Since(start).Round(time.Second))
	if ctx.Err() != nil {
		return buf.String(), fmt.Errorf("timed out after %s", timeout)
	}
	return buf.String(), err
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// nomad runs the nomad CLI against the cluster.
func (c *cluster) nomad(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(toolsBin(t, c.root), "nomad")
	out, err := c.run(t, 6*time.Minute, bin, args...)
	if err != nil {
		t.Fatalf("nomad %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func toolsBin(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "scripts", "tools.sh"), "bindir").Output()
	if err != nil {
		t.Fatalf("scripts/tools.sh bindir: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// leftovers lists what of the cluster is still there: processes whose
// command line names its state folder, containers that mount a folder of
// it, and its ports still listening.
func (c *cluster) leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, c.stateDir) {
			left = append(left, fmt.Sprintf("process %s: %s", e.Name(), cmd))
		}
	}
	left = append(left, c.leftContainers()...)
	listening := listeningPorts(t)
	for name, p := range c.ports {
		if listening[p] {
			left = append(left, fmt.Sprintf("port %d (%s) listening", p, name))
		}
	}
	return left
}

var hexPort = regexp.MustCompile(`^\s*\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:[0-9A-F]{4} (\w\w)`)

// listeningPorts reads the TCP sockets listening and the UDP sockets bound,
// from /proc/net.
func listeningPorts(t *testing.T) map[int]bool {
	t.Helper()
	ports := make(map[int]bool)
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile("/proc/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := hexPort.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			// 0A is LISTEN for TCP; 07 is a bound UDP socket.
			if (strings.HasPrefix(f, "tcp") && m[2] != "0A") || (strings.HasPrefix(f, "udp") && m[2] != "07") {
				continue
			}
			p, _ := strconv.ParseInt(m[1], 16, 32)
			ports[int(p)] = true
		}
	}
	return ports
}

// outputs reads `terraform output -json` of the cluster's state.
func (c *cluster) outputs(t *testing.T) map[string]any {
	t.Helper()
	out, err := c.run(t, time.Minute, "terraform", "-chdir="+filepath.Join(c.root, "terraform/environments/local"), "output", "-json", "-state="+c.tfState)
	if err != nil {
		t.Fatalf("terraform output: %v", err)
	}
	var raw map[string]struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &raw); err != nil {
		t.Fatalf("terraform output: %v", err)
	}
	m := make(map[string]any)
	for k, v := range raw {
		m[k] = v.Value
	}
	return m
}

// token is the cluster's management token of agent (nomad, consul), which
// scripts/devcluster.sh makes at the cluster's first start and keeps in its
// state folder; "" before that.
func (c *cluster) token(agent string) string {
	b, _ := os.ReadFile(filepath.Join(c.stateDir, "keys", agent+"-management.token"))
	return strings.TrimSpace(string(b))
}

// caFile is the CA of agent's (nomad, consul) HTTPS certificate, which
// scripts/devcluster.sh makes at the cluster's first start.
func (c *cluster) caFile(agent string) string {
	return filepath.Join(c.stateDir, "tls", agent+"-agent-ca.pem")
}

// operatorTransport is the operator's client of the cluster's Nomad and
// Consul APIs: their HTTPS certificates checked against the cluster's CAs
// (read again when they change: a purged cluster makes new ones), and the
// operator's token on every request that carries none (a test that checks
// what happens without one sets the header empty).
type operatorTransport struct {
	c    *cluster
	base http.RoundTripper

	mu   sync.Mutex
	byCA map[string]*http.Transport
}

func (o *operatorTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var header, agent string
	switch r.URL.Scheme + "://" + r.URL.Host {
	case o.c.nomadURL:
		header, agent = "X-Nomad-Token", "nomad"
	case o.c.consulURL:
		header, agent = "X-Consul-Token", "consul"
	default:
		return o.base.RoundTrip(r)
	}
	if _, set := r.Header[header]; !set {
		r = r.Clone(r.Context())
		r.Header.Set(header, o.c.token(agent))
	}
	return o.agent(agent).RoundTrip(r)
}

// agent is the transport that trusts agent's CA of the moment.
func (o *operatorTransport) agent(agent string) http.RoundTripper {
	pem, _ := os.ReadFile(o.c.caFile(agent))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byCA == nil {
		o.byCA = map[string]*http.Transport{}
	}
	if tr, ok := o.byCA[string(pem)]; ok {
		return tr
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := o.base.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	o.byCA[string(pem)] = tr
	return tr
}
