package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Docker engine's API, on its unix socket (DOCKER_HOST=unix://… moves
// it): what the e2e suite checks the containers with, as an operator's
// tools would.
var dockerAPI = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			sock := "/var/run/docker.sock"
			if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
				sock = h
			}
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	},
}

func dockerCall(method, path string, out any) error {
	req, err := http.NewRequest(method, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := dockerAPI.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("docker %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// container is what `docker inspect` says of one container.
type container struct {
	ID      string
	Image   string
	LogPath string // the json-file driver's file, which the log collector tails
	Config  struct {
		User   string
		Image  string
		Labels map[string]string
	}
	State struct {
		Running bool
		Pid     int
	}
	HostConfig struct {
		ReadonlyRootfs bool
		Memory         int64
		NetworkMode    string
		Privileged     bool
		CapDrop        []string
		CapAdd         []string
	}
	Mounts []struct {
		Source      string
		Destination string
		RW          bool
	}
}

func (c container) alloc() string { return c.Config.Labels["com.hashicorp.nomad.alloc_id"] }
func (c container) task() string  { return c.Config.Labels["com.hashicorp.nomad.task_name"] }

// uid is the real user id its main process runs as, from /proc (the
// engine runs on this machine).
func (c container) uid() (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.State.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("no Uid in /proc/%d/status", c.State.Pid)
}

// containers lists the running containers of a job of this cluster: Nomad
// labels them with the job's name, and each mounts a task folder from the
// cluster's state folder (another cluster on the machine shares the engine).
func (c *cluster) containers(job string) ([]container, error) {
	var list []struct{ ID string }
	filters := url.QueryEscape(fmt.Sprintf(`{"label":["com.hashicorp.nomad.job_name=%s"]}`, job))
	if err := dockerCall("GET", "/containers/json?filters="+filters, &list); err != nil {
		return nil, err
	}
	var out []container
	for _, l := range list {
		var ct container
		if err := dockerCall("GET", "/containers/"+l.ID+"/json", &ct); err != nil {
			continue // gone in between
		}
		if ct.State.Running && ct.mounts(c.stateDir) {
			out = append(out, ct)
		}
	}
	return out, nil
}

func (ct container) mounts(dir string) bool {
	for _, m := range ct.Mounts {
		if strings.HasPrefix(m.Source, dir+string(os.PathSeparator)) {
			return true
		}
	}
	return false
}

// taskContainer is the running container of a job's task in one
// allocation, or an error.
func (c *cluster) taskContainer(job, alloc, task string) (container, error) {
	cs, err := c.containers(job)
	if err != nil {
		return container{}, err
	}
	for _, ct := range cs {
		if ct.alloc() == alloc && ct.task() == task {
			return ct, nil
		}
	}
	return container{}, fmt.Errorf("no running container for %s/%s in allocation %.8s", job, task, alloc)
}

// killContainer sends SIGKILL to a container through the engine, as a
// crash or an operator's `docker kill` would.
func killContainer(t *testing.T, ct container) {
	t.Helper()
	if err := dockerCall("POST", "/containers/"+ct.ID+"/kill?signal=KILL", nil); err != nil {
		t.Fatal(err)
	}
}

// waitReplaced waits until Nomad runs a new container (another id) for the
// task of the killed one, in the same allocation: a restart, not a new
// placement.
func (c *cluster) waitReplaced(t *testing.T, job string, killed container, timeout time.Duration) container {
	t.Helper()
	var next container
	eventually(t, timeout, fmt.Sprintf("Nomad replacing the killed %s container", job), func() error {
		ct, err := c.taskContainer(job, killed.alloc(), killed.task())
		if err != nil {
			return err
		}
		if ct.ID == killed.ID {
			return fmt.Errorf("container %.12s still running", ct.ID)
		}
		next = ct
		return nil
	})
	return next
}

// leftContainers lists the containers of this cluster still there after
// make down, running or not.
func (c *cluster) leftContainers() []string {
	var list []struct {
		ID     string
		Names  []string
		Mounts []struct{ Source string }
	}
	if err := dockerCall("GET", "/containers/json?all=true", &list); err != nil {
		return nil // no engine: no container
	}
	var left []string
	for _, l := range list {
		for _, m := range l.Mounts {
			if strings.HasPrefix(m.Source, c.stateDir+string(os.PathSeparator)) {
				left = append(left, fmt.Sprintf("container %.12s %v", l.ID, l.Names))
				break
			}
		}
	}
	return left
}

// rootReaders are the jobs whose task is root because what it reads is
// root's alone (the log collector: Docker's log files, mode 0640), and so
// must run with every capability dropped: root in name only.
var rootReaders = map[string]bool{"log-collector": true}

// powerless reports whether the container runs with every capability
// dropped and none added.
func (c container) powerless() bool {
	all := false
	for _, d := range c.HostConfig.CapDrop {
		all = all || strings.EqualFold(d, "all")
	}
	return all && len(c.HostConfig.CapAdd) == 0
}

// stepContainers: every job of the shop runs its tasks with the docker
// driver, from an image of make images, on the host's network, read-only;
// every container that runs is not root, has its memory limit (the task's
// resources), and is not privileged.
func stepContainers(t *testing.T, w *world) {
	type task struct {
		Name      string
		Driver    string
		User      string
		Config    map[string]any
		Lifecycle *struct{ Hook string }
		Resources struct{ MemoryMB, MemoryMaxMB int }
	}
	var seen []string
	for _, j := range w.c.jobs(t) {
		if j.ParentID != "" {
			continue // a run of a periodic or parameterized job
		}
		var spec struct{ TaskGroups []struct{ Tasks []task } }
		if err := getJSON(w.c.nomadURL+"/v1/job/"+j.ID, &spec); err != nil {
			t.Fatal(err)
		}
		main := map[string]task{}
		for _, g := range spec.TaskGroups {
			for _, tk := range g.Tasks {
				image, _ := tk.Config["image"].(string)
				switch {
				case tk.Driver != "docker":
					t.Errorf("%s/%s: driver %q, want docker", j.ID, tk.Name, tk.Driver)
				case !strings.HasPrefix(image, "mylittleshopping/"):
					t.Errorf("%s/%s: image %q is not one of make images'", j.ID, tk.Name, image)
				case tk.Config["network_mode"] != "host" || tk.Config["readonly_rootfs"] != true:
					t.Errorf("%s/%s: network_mode %v, readonly_rootfs %v", j.ID, tk.Name, tk.Config["network_mode"], tk.Config["readonly_rootfs"])
				}
				if tk.Lifecycle == nil {
					main[tk.Name] = tk
				}
			}
		}
		if j.Type == "batch" {
			continue // runs on its schedule (or a dispatch): its spec is checked
		}
		allocs, err := w.c.allocs(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := w.c.containers(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range allocs {
			if a.ClientStatus != "running" {
				continue
			}
			for name, tk := range main {
				var ct *container
				for i := range cs {
					if cs[i].alloc() == a.ID && cs[i].task() == name {
						ct = &cs[i]
					}
				}
				if ct == nil {
					t.Errorf("%s/%s (allocation %.8s): no running container", j.ID, name, a.ID)
					continue
				}
				uid, err := ct.uid()
				limit := int64(max(tk.Resources.MemoryMB, tk.Resources.MemoryMaxMB)) << 20
				switch {
				case err != nil:
					t.Errorf("%s/%s: %v", j.ID, name, err)
				case (uid == 0 || ct.Config.User == "" || ct.Config.User == "root" || strings.HasPrefix(ct.Config.User, "0")) && !(rootReaders[j.ID] && ct.powerless()):
					t.Errorf("%s/%s: runs as root (user %q, uid %d, capabilities dropped %v, added %v)", j.ID, name, ct.Config.User, uid, ct.HostConfig.CapDrop, ct.HostConfig.CapAdd)
				case !ct.HostConfig.ReadonlyRootfs:
					t.Errorf("%s/%s: the root filesystem is writable", j.ID, name)
				case ct.HostConfig.Memory == 0 || ct.HostConfig.Memory != limit:
					t.Errorf("%s/%s: memory limit %d bytes, want the task's %d", j.ID, name, ct.HostConfig.Memory, limit)
				case ct.HostConfig.NetworkMode != "host" || ct.HostConfig.Privileged:
					t.Errorf("%s/%s: network %q, privileged %v", j.ID, name, ct.HostConfig.NetworkMode, ct.HostConfig.Privileged)
				default:
					seen = append(seen, fmt.Sprintf("%s/%s uid %d %dMiB", j.ID, name, uid, ct.HostConfig.Memory>>20))
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no container checked")
	}
	t.Logf("%d containers running, each non-root, read-only, with its memory limit: %s", len(seen), strings.Join(seen, ", "))
}

// stepDatabaseContainerKilled: a product written, the inventory database's
// container killed; Nomad runs a new container on the same host volume,
// and the product is read back.
func stepDatabaseContainerKilled(t *testing.T, w *world) {
	w.needJourney(t)
	name := fmt.Sprintf("Container-proof kettle %d", time.Now().UnixNano()%1e6)
	id := w.newProduct(t, name, 4)
	cs, err := w.c.containers("inventory-db")
	if err != nil {
		t.Fatal(err)
	}
	var db container
	for _, ct := range cs {
		if ct.task() == "postgres" {
			db = ct
		}
	}
	if db.ID == "" {
		t.Fatalf("no running postgres container for inventory-db: %v", cs)
	}
	killContainer(t, db)
	killed := time.Now()
	t.Logf("killed inventory-db's container %.12s (allocation %.8s)", db.ID, db.alloc())
	next := w.c.waitReplaced(t, "inventory-db", db, 2*time.Minute)
	w.c.waitHealthy(t, "inventory-db", "inventory-db", 1, 3*time.Minute)
	eventually(t, 90*time.Second, "the product written before the kill", func() error {
		r, err := w.shop.call("GET", "/v1/products/"+id, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("%d %s", r.status, r.body)
		}
		var p struct {
			Name      string `json:"name"`
			Available int    `json:"available"`
		}
		r.decode(t, &p)
		if p.Name != name || p.Available != 4 {
			return fmt.Errorf("got %q with %d available", p.Name, p.Available)
		}
		return nil
	})
	t.Logf("new container %.12s on the same volume; the product was read back %s after the kill", next.ID, time.Since(killed).Round(time.Second))
	// Both instances ready again before the next step takes one away.
	w.c.waitHealthy(t, "inventory", "inventory", 2, 2*time.Minute)
}
