package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The backups of issue 11, on the deployed cluster: pgBackRest (repo1 on
// the host's `backups` volume, repo2 in the objectstore, outside the
// cluster's state), the backup command, the periodic and restore jobs.

// backup runs the backup command against the cluster and returns its
// output and exit status.
func (w *world) backup(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	out, err := w.c.run(t, timeout, filepath.Join(w.c.root, "bin", "backup"), args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	default:
		t.Fatalf("backup %s: %v", strings.Join(args, " "), err)
		return out, -1
	}
}

func (w *world) mustBackup(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, code := w.backup(t, timeout, args...)
	if code != 0 {
		t.Fatalf("backup %s: exit %d", strings.Join(args, " "), code)
	}
	return out
}

// objectstoreDir and keysFile sit beside the cluster's state (terraform/environments/local).
func (c *cluster) objectstoreDir() string {
	return filepath.Join(filepath.Dir(c.stateDir), "objectstore")
}

// addr is the address of a passing instance of a service, from Consul.
func (c *cluster) addr(t *testing.T, service string) string {
	t.Helper()
	a, err := c.addrOf(service)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (c *cluster) addrOf(service string) (string, error) {
	var es []consulEntry
	if err := getJSON(c.consulURL+"/v1/health/service/"+service+"?passing=true", &es); err != nil || len(es) == 0 {
		return "", fmt.Errorf("no passing instance of %s: %v", service, err)
	}
	// Every service of the shop serves its API in the mesh.
	return fmt.Sprintf("https://%s:%d", es[0].Service.Address, es[0].Service.Port), nil
}

// checkout puts one unit of product in the buyer's cart and checks out;
// it returns the order's id and status (empty on an error).
func (w *world) checkout(sh *shopper, product, key string) (string, string, error) {
	if r, err := sh.c.call("PUT", "/v1/cart/lines/"+product, map[string]int{"quantity": 1}); err != nil || r.status != http.StatusOK {
		return "", "", fmt.Errorf("cart: %v %v", err, r)
	}
	r, err := sh.c.call("POST", "/v1/checkout", map[string]any{"shipping_address": address, "card": card("4242424242424242")}, "Idempotency-Key", key)
	if err != nil {
		return "", "", err
	}
	if r.status != http.StatusCreated {
		return "", "", fmt.Errorf("checkout: %d %s", r.status, r.body)
	}
	var o struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(r.body, &o); err != nil {
		return "", "", err
	}
	return o.ID, o.Status, nil
}

// newProduct makes a product of the journey's seller with stock.
func (w *world) newProduct(t *testing.T, name string, stock int) string {
	t.Helper()
	var p struct {
		ID string `json:"id"`
	}
	w.seller.c.do(t, "POST", "/v1/seller/products", map[string]any{
		"name": name, "description": "Backed up by the e2e suite.", "price": map[string]any{"amount": 990, "currency": "EUR"}, "on_hand": stock,
	}).want(t, http.StatusCreated).decode(t, &p)
	return p.ID
}

type payment struct {
	ID             string `json:"id"`
	OrderID        string `json:"order_id"`
	Status         string `json:"status"`
	Amount         int64  `json:"amount"`
	AmountRefunded int64  `json:"amount_refunded"`
}

// payments walks payment's internal list of the payments created since.
func (w *world) payments(since time.Time) ([]payment, error) {
	base, err := w.c.addrOf("payment")
	if err != nil {
		return nil, err
	}
	hc, err := w.c.meshClient("aggregator")
	if err != nil {
		return nil, err
	}
	var all []payment
	token := ""
	for {
		q := url.Values{"since": {since.UTC().Format(time.RFC3339)}, "limit": {"100"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Items         []payment `json:"items"`
			NextPageToken *string   `json:"next_page_token"`
		}
		if err := getJSONWith(hc, base+"/internal/payments?"+q.Encode(), &page); err != nil {
			return nil, fmt.Errorf("payments: %w", err)
		}
		all = append(all, page.Items...)
		if page.NextPageToken == nil {
			return all, nil
		}
		token = *page.NextPageToken
	}
}

// orderStatus reads an order from orders' internal API: "" when orders
// does not know it. An instance that is going away (Consul lists it a
// moment longer) is retried on another, for up to 30 s.
func (w *world) orderStatus(t *testing.T, id string) string {
	t.Helper()
	var status string
	eventually(t, 30*time.Second, "order "+id, func() error {
		base, err := w.c.addrOf("orders")
		if err != nil {
			return err
		}
		hc, err := w.c.meshClient("aggregator")
		if err != nil {
			return err
		}
		resp, err := hc.Get(base + "/internal/orders/" + id)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			status = ""
			return nil
		}
		var o struct {
			Status string `json:"status"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&o) != nil {
			return fmt.Errorf("order %s: %d", id, resp.StatusCode)
		}
		status = o.Status
		return nil
	})
	return status
}

// reconciled runs the aggregator's reconciliation until every payment
// taken since the time belongs to an order that keeps it, or is refunded:
// no buyer stays charged for an order that does not exist.
func (w *world) reconciled(t *testing.T, since time.Time, timeout time.Duration) {
	t.Helper()
	keeps := map[string]bool{"confirmed": true, "shipped": true, "delivered": true}
	eventually(t, timeout, "every captured payment belongs to a confirmed order or is refunded", func() error {
		edge, err := w.c.meshClient("edge")
		if err != nil {
			return err
		}
		if agg, err := w.c.addrOf("aggregator"); err != nil {
			return err
		} else if err := sendJSONWith(edge, "POST", agg+"/internal/reconcile", map[string]any{}, nil); err != nil {
			t.Logf("reconcile: %v", err)
		}
		ps, err := w.payments(since)
		if err != nil {
			return err
		}
		var bad []string
		for _, p := range ps {
			if p.Status != "succeeded" {
				continue
			}
			if st := w.orderStatus(t, p.OrderID); !keeps[st] {
				bad = append(bad, fmt.Sprintf("payment %s captured for order %s (%q)", p.ID[:8], p.OrderID[:8], st))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%d: %s", len(bad), strings.Join(bad, "; "))
		}
		return nil
	})
}

// grepTree lists the files under root that contain needle.
func grepTree(t *testing.T, root, needle string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(needle)) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// stepBackups: the first full backups are there, a dump and an
// incremental run on demand, status is clean, and no repository file
// holds a plaintext that the databases hold.
func stepBackups(t *testing.T, w *world) {
	w.needJourney(t)
	w.mustBackup(t, 10*time.Minute, "run", "dump")
	w.mustBackup(t, 10*time.Minute, "run", "incr", "orders")
	out := w.mustBackup(t, time.Minute, "status")
	for _, db := range databases {
		if !strings.Contains(out, db) {
			t.Errorf("status does not list %s", db)
		}
	}
	var st []map[string]any
	if err := json.Unmarshal([]byte(w.mustBackup(t, time.Minute, "status", "--json")), &st); err != nil || len(st) != len(databases) {
		t.Errorf("status --json: %v, %d databases", err, len(st))
	}
	// The drill restores each database's newest dump with psql into a
	// fresh server and compares it with the figures the dump took in its
	// own snapshot.
	w.mustBackup(t, 15*time.Minute, "drill")
	var drilled []map[string]any
	if err := json.Unmarshal([]byte(w.mustBackup(t, time.Minute, "status", "--json")), &drilled); err != nil {
		t.Fatal(err)
	}
	for _, s := range drilled {
		var rec struct {
			Drill struct {
				Dump struct {
					Name    string `json:"name"`
					Outcome string `json:"outcome"`
					Error   string `json:"error"`
					Tables  []struct {
						Table string `json:"table"`
						Rows  int64  `json:"restored_rows"`
						Equal bool   `json:"equal"`
					} `json:"tables"`
				} `json:"dump"`
			} `json:"drill"`
		}
		raw, _ := json.Marshal(s["records"].(map[string]any)["drill"])
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("%v: drill record %s: %v", s["db"], raw, err)
		}
		d, rows := rec.Drill.Dump, int64(0)
		for _, tb := range d.Tables {
			rows += tb.Rows
			if !tb.Equal {
				t.Errorf("%v: dump %s: table %s differs", s["db"], d.Name, tb.Table)
			}
		}
		if d.Outcome != "equal" || len(d.Tables) == 0 || rows == 0 {
			t.Errorf("%v: dump check %q (%s), %d tables, %d rows", s["db"], d.Outcome, d.Error, len(d.Tables), rows)
		}
		t.Logf("%v: dump %s restored with psql: %d tables, %d rows, equal", s["db"], d.Name, len(d.Tables), rows)
	}
	repo1 := filepath.Join(w.c.stateDir, "volumes", "backups")
	for _, dir := range []string{repo1, w.c.objectstoreDir()} {
		if hits := grepTree(t, dir, w.buyer.email); len(hits) > 0 {
			t.Errorf("the buyer's email in plaintext in %v", hits)
		}
	}
	if hits := grepTree(t, filepath.Join(w.c.stateDir, "volumes", "auth-db", "pgdata"), w.buyer.email); len(hits) == 0 {
		t.Errorf("the buyer's email is not in auth's data folder either: the plaintext check proves nothing")
	}
}

// stepPointInTime restores orders to a time between two checkouts: the
// first order is there, the second is not, and the reconciliation refunds
// the second's payment (its order no longer exists).
func stepPointInTime(t *testing.T, w *world) {
	w.needJourney(t)
	start := time.Now().Add(-time.Second)
	product := w.newProduct(t, fmt.Sprintf("PITR kettle %d", time.Now().UnixNano()%1e6), 10)
	before, st, err := w.checkout(w.buyer, product, "pitr-before-"+product)
	if err != nil || st != "confirmed" {
		t.Fatalf("first checkout: %s %v", st, err)
	}
	time.Sleep(2 * time.Second)
	target := time.Now().UTC()
	time.Sleep(2 * time.Second)
	after, st, err := w.checkout(w.buyer, product, "pitr-after-"+product)
	if err != nil || st != "confirmed" {
		t.Fatalf("second checkout: %s %v", st, err)
	}
	// The incremental's end archives the WAL holding both.
	w.mustBackup(t, 10*time.Minute, "run", "incr", "orders")
	began := time.Now()
	w.mustBackup(t, 15*time.Minute, "restore", "orders", "--time", target.Format(time.RFC3339Nano), "--from", "repo1")
	t.Logf("point-in-time restore of orders to %s: %s", target.Format(time.RFC3339Nano), time.Since(began).Round(time.Second))
	w.c.waitHealthy(t, "orders", "orders", 2, 3*time.Minute)
	eventually(t, time.Minute, "the orders as of the target", func() error {
		if st := w.orderStatus(t, before); st != "confirmed" {
			return fmt.Errorf("order committed before the target: %q, want confirmed", st)
		}
		if st := w.orderStatus(t, after); st != "" {
			return fmt.Errorf("order committed after the target: %q, want unknown", st)
		}
		return nil
	})
	w.reconciled(t, start, 4*time.Minute)
}

// stepDiskLoss kills orders' database under checkout load and deletes its
// volume: Nomad restarts the task, which restores from repo1 and replays
// the archived WAL. Every order confirmed more than 60 s before the loss
// is back; the payments are reconciled.
func stepDiskLoss(t *testing.T, w *world) {
	w.needJourney(t)
	start := time.Now().Add(-time.Second)
	product := w.newProduct(t, fmt.Sprintf("Disk-loss mug %d", time.Now().UnixNano()%1e6), 100000)
	type confirmed struct {
		id string
		at time.Time
	}
	var (
		mu     sync.Mutex
		orders []confirmed
		failed int
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	for i, sh := range []*shopper{w.buyer, w.seller} {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				id, st, err := w.checkout(sh, product, fmt.Sprintf("loss-%d-%d-%s", i, n, product))
				mu.Lock()
				if err == nil && st == "confirmed" {
					orders = append(orders, confirmed{id, time.Now()})
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(75 * time.Second)

	volume := filepath.Join(w.c.stateDir, "volumes", "orders-db")
	var db container
	if cs, err := w.c.containers("orders-db"); err == nil {
		for _, ct := range cs {
			if ct.task() == "postgres" {
				db = ct
			}
		}
	}
	if db.ID == "" {
		t.Fatal("no running postgres container for orders-db")
	}
	lost := time.Now()
	killContainer(t, db)
	entries, _ := os.ReadDir(volume)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(volume, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed orders' PostgreSQL container %.12s and emptied its volume", db.ID)
	eventually(t, 10*time.Minute, "orders' database restored and passing", func() error {
		if _, err := os.Stat(filepath.Join(volume, "pgdata", "PG_VERSION")); err != nil {
			return err
		}
		if n, err := w.c.passing("orders-db"); err != nil || n != 1 {
			return fmt.Errorf("orders-db: %d passing %v", n, err)
		}
		return nil
	})
	w.c.waitHealthy(t, "orders", "orders", 2, 3*time.Minute)
	restored := time.Since(lost)
	close(stop)
	wg.Wait()

	var missing []confirmed
	newest := time.Time{}
	for _, o := range orders {
		if !o.at.Before(lost) {
			continue
		}
		if w.orderStatus(t, o.id) == "" {
			missing = append(missing, o)
			if o.at.Before(lost.Add(-60 * time.Second)) {
				t.Errorf("order %s confirmed %s before the loss is gone", o.id, lost.Sub(o.at).Round(time.Second))
			}
		} else if o.at.After(newest) {
			newest = o.at
		}
	}
	rpo := time.Duration(0)
	if len(missing) > 0 {
		sort.Slice(missing, func(i, j int) bool { return missing[i].at.Before(missing[j].at) })
		rpo = lost.Sub(missing[0].at)
	}
	t.Logf("disk loss under load: %d orders confirmed (%d checkouts failed), %d lost; measured RPO %s (newest order kept: %s before the loss); restore time %s",
		len(orders), failed, len(missing), rpo.Round(time.Second), lost.Sub(newest).Round(time.Second), restored.Round(time.Second))
	w.reconciled(t, start, 5*time.Minute)
	// A new timeline: take a full backup on it, as `backup restore` does.
	w.mustBackup(t, 10*time.Minute, "run", "full", "orders")
}

// stepCorruptRepo1 damages a file of inventory's backup in repo1: the
// drill fails naming it, status reports the failed drill, the Consul check
// is critical, and a restore from repo2 still works.
func stepCorruptRepo1(t *testing.T, w *world) {
	w.needJourney(t)
	sets := filepath.Join(w.c.stateDir, "volumes", "backups", "pgbackrest", "backup", "inventory")
	var victim string
	filepath.WalkDir(sets, func(p string, d fs.DirEntry, err error) error {
		if err == nil && victim == "" && !d.IsDir() && strings.Contains(p, "/pg_data/base/") {
			if fi, err := d.Info(); err == nil && fi.Size() > 64 {
				victim = p
			}
		}
		return nil
	})
	if victim == "" {
		t.Fatalf("no backup file of inventory in %s", sets)
	}
	f, err := os.OpenFile(victim, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("corrupted by the e2e suite"), 16); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rel, _ := filepath.Rel(sets, victim)
	t.Logf("corrupted %s", rel)

	out, code := w.backup(t, 10*time.Minute, "drill", "inventory")
	if code == 0 {
		t.Errorf("the drill passed over a corrupted repo1")
	}
	if !strings.Contains(out, filepath.Base(victim)) {
		t.Errorf("the drill's failure does not name %s", filepath.Base(victim))
	}
	if out, code := w.backup(t, time.Minute, "status", "inventory"); code == 0 || !strings.Contains(strings.ToLower(out), "drill") {
		t.Errorf("status after a failed drill: exit %d", code)
	}
	var checks []struct{ CheckID, Status string }
	if err := getJSON(w.c.consulURL+"/v1/health/checks/backup-drill", &checks); err != nil {
		t.Fatal(err)
	}
	critical := false
	for _, c := range checks {
		critical = critical || (c.CheckID == "backup-drill-inventory" && c.Status == "critical")
	}
	if !critical {
		t.Errorf("the drill check of inventory is not critical in Consul: %+v", checks)
	}
	// The restore ends with a full backup, whose verification reports the
	// damaged set in repo1 again: inventory serves, the command says so.
	out, code = w.backup(t, 15*time.Minute, "restore", "inventory", "--latest", "--from", "repo2")
	if !strings.Contains(out, "start job inventory and wait until it passes in Consul: done") {
		t.Fatalf("restore of inventory from repo2 did not bring it back (exit %d)", code)
	}
	w.c.waitHealthy(t, "inventory", "inventory", 2, 3*time.Minute)
	w.seller.c = w.shop.as(w.login(t, w.seller))
	if got := w.onHand(t); got != 3 {
		t.Errorf("on hand after the restore from repo2: got %d, want 3", got)
	}
	// The damaged set stays in repo1 until retention expires it: later
	// drills of inventory fail until then, as they should.
}

// stepHostLost is a lost host: make down, the cluster's state and volumes
// (repo1 with them) purged, make up. Every database comes back from repo2;
// the accounts log in with their old passwords, their orders, sales and
// deliveries are there.
func stepHostLost(t *testing.T, w *world) {
	w.needJourney(t)
	w.c.make(t, 10*time.Minute, "down")
	if err := os.RemoveAll(w.c.stateDir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := w.c.make(t, 20*time.Minute, "up")
	t.Logf("make up on a new host: healthy shop in %s", time.Since(start).Round(time.Second))
	stepHealth(t, w)
	for _, db := range databases {
		if !strings.Contains(out, "restored "+db) {
			t.Errorf("make up does not say what it restored of %s", db)
		}
	}
	w.buyer.c = w.shop.as(w.login(t, w.buyer))
	w.seller.c = w.shop.as(w.login(t, w.seller))
	w.buyer.c.do(t, "GET", "/v1/orders/"+w.order, nil).want(t, http.StatusOK)
	// The load steps sold this seller's products hundreds of times since
	// the journey: walk every page of its sales.
	found := false
	for token := ""; !found; {
		var sales struct {
			Items []struct {
				OrderID string `json:"order_id"`
			} `json:"items"`
			NextPageToken *string `json:"next_page_token"`
		}
		q := url.Values{"limit": {"100"}}
		if token != "" {
			q.Set("page_token", token)
		}
		w.seller.c.do(t, "GET", "/v1/sales?"+q.Encode(), nil).want(t, http.StatusOK).decode(t, &sales)
		for _, s := range sales.Items {
			found = found || s.OrderID == w.order
		}
		if sales.NextPageToken == nil {
			break
		}
		token = *sales.NextPageToken
	}
	if !found {
		t.Errorf("the journey's sale is not listed after the rebuild")
	}
	var tracking struct {
		Deliveries []struct {
			Status string `json:"status"`
		} `json:"deliveries"`
	}
	w.buyer.c.do(t, "GET", "/v1/orders/"+w.order+"/tracking", nil).want(t, http.StatusOK).decode(t, &tracking)
	if len(tracking.Deliveries) != 1 || tracking.Deliveries[0].Status != "shipped" {
		t.Errorf("tracking after the rebuild: %+v", tracking)
	}
}
