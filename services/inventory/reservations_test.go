package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// TestReserveIdempotent is acceptance 3: the same request twice is one
// reservation (201, then 200 with the same reservation), also when the two
// race; other lines under the same order id are 409 and change nothing.
func TestReserveIdempotent(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	a := s.create(t, seller, newProduct{OnHand: 10})
	b := s.create(t, seller, newProduct{OnHand: 10})
	order := uuid.New()
	body := reserveBody(order, 600, line{a.ID, 2}, line{b.ID, 3})

	var first, second reservation
	s.do(t, "POST", "/internal/reservations", "", body).Want(t, http.StatusCreated).Decode(t, &first)
	s.do(t, "POST", "/internal/reservations", "", body).Want(t, http.StatusOK).Decode(t, &second)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("the repeated request got another reservation (-first +second):\n%s", diff)
	}
	// The lines in another order are the same request.
	s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 600, line{b.ID, 3}, line{a.ID, 2})).Want(t, http.StatusOK)

	tests := []struct {
		name  string
		lines []line
	}{
		{"other quantity", []line{{a.ID, 1}, {b.ID, 3}}},
		{"fewer lines", []line{{a.ID, 2}}},
		{"more lines", []line{{a.ID, 2}, {b.ID, 3}, {s.create(t, seller, newProduct{OnHand: 1}).ID, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 600, tt.lines...)).WantProblem(t, http.StatusConflict, "reservation-mismatch")
		})
	}
	for _, p := range []product{a, b} {
		onHand, reserved := s.stock(t, p.ID)
		want := map[uuid.UUID]int{a.ID: 2, b.ID: 3}[p.ID]
		if onHand != 10 || reserved != want {
			t.Errorf("product %s: got on_hand %d reserved %d, want 10 and %d (reserved once)", p.Name, onHand, reserved, want)
		}
	}
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM reservations`).Scan(&n); err != nil || n != 1 {
		t.Errorf("got %d reservations (%v), want 1", n, err)
	}

	t.Run("concurrent duplicates", func(t *testing.T) {
		order := uuid.New()
		body := reserveBody(order, 600, line{a.ID, 1})
		var created, repeated atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				r, err := s.send(t.Context(), "POST", "/internal/reservations", "", body)
				switch {
				case err != nil:
					t.Error(err)
				case r.Status == http.StatusCreated:
					created.Add(1)
				case r.Status == http.StatusOK:
					repeated.Add(1)
				default:
					t.Errorf("got status %d: %s", r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		if created.Load() != 1 || repeated.Load() != 19 {
			t.Errorf("got %d created and %d repeated, want 1 and 19", created.Load(), repeated.Load())
		}
		if _, reserved := s.stock(t, a.ID); reserved != 3 {
			t.Errorf("got reserved %d, want 3 (2 + 1 reserved once)", reserved)
		}
	})
}

// TestReserveAllOrNothing: a reservation whose lines cannot all be had
// takes nothing, and its 409 out-of-stock names every line at fault by its
// place in the request.
func TestReserveAllOrNothing(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	plenty := s.create(t, seller, newProduct{Name: "Plenty", OnHand: 5})
	scarce := s.create(t, seller, newProduct{Name: "Scarce", OnHand: 1})
	soldOut := s.create(t, seller, newProduct{Name: "Sold out", OnHand: 0})
	gone := s.create(t, seller, newProduct{Name: "Gone", OnHand: 9})
	s.do(t, "POST", "/v1/seller/products/"+gone.ID.String()+"/archive", seller.Token, nil).Want(t, http.StatusOK)
	missing := uuid.New()

	tests := []struct {
		name   string
		lines  []line
		fields []string
		detail string // in the error of the first field
	}{
		{"one line short", []line{{plenty.ID, 2}, {scarce.ID, 2}}, []string{"lines[1].quantity"}, "only 1 of product"},
		{"sold out", []line{{soldOut.ID, 1}, {plenty.ID, 1}}, []string{"lines[0].quantity"}, "out of stock"},
		{"archived and missing", []line{{plenty.ID, 1}, {gone.ID, 1}, {missing, 1}}, []string{"lines[1].product_id", "lines[2].product_id"}, "no longer on sale"},
		{"every line short", []line{{scarce.ID, 3}, {plenty.ID, 6}}, []string{"lines[0].quantity", "lines[1].quantity"}, "only 1 of product"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.do(t, "POST", "/internal/reservations", "", reserveBody(uuid.New(), 0, tt.lines...)).WantProblem(t, http.StatusConflict, "out-of-stock")
			if diff := cmp.Diff(tt.fields, fieldsOf(p)); diff != "" {
				t.Errorf("fields at fault (-want +got):\n%s", diff)
			}
			if len(p.Errors) > 0 && !strings.Contains(p.Errors[0].Detail, tt.detail) {
				t.Errorf("got detail %q, want it to contain %q", p.Errors[0].Detail, tt.detail)
			}
		})
	}
	for _, p := range []product{plenty, scarce, soldOut, gone} {
		if _, reserved := s.stock(t, p.ID); reserved != 0 {
			t.Errorf("%s: got reserved %d after refused reservations, want 0", p.Name, reserved)
		}
	}
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM reservations`).Scan(&n); err != nil || n != 0 {
		t.Errorf("got %d reservations left behind (%v), want 0", n, err)
	}
	// What fits is reserved whole.
	var r reservation
	s.do(t, "POST", "/internal/reservations", "", reserveBody(uuid.New(), 0, line{scarce.ID, 1}, line{plenty.ID, 5})).Want(t, http.StatusCreated).Decode(t, &r)
	if r.Status != "held" || len(r.Lines) != 2 {
		t.Errorf("got %+v, want a held reservation of 2 lines", r)
	}
	for _, p := range []product{plenty, scarce} {
		if onHand, reserved := s.stock(t, p.ID); reserved != onHand {
			t.Errorf("%s: got reserved %d of %d, want all", p.Name, reserved, onHand)
		}
	}
}

// TestCommitAndRelease: commit takes the units out of on_hand once, release
// gives them back once; both are idempotent and exclude each other.
func TestCommitAndRelease(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 10})
	path := func(order uuid.UUID, action string) string {
		return "/internal/reservations/" + order.String() + action
	}

	sold := uuid.New()
	s.do(t, "POST", "/internal/reservations", "", reserveBody(sold, 0, line{p.ID, 3})).Want(t, http.StatusCreated)
	for range 2 {
		var r reservation
		s.do(t, "POST", path(sold, "/commit"), "", nil).Want(t, http.StatusOK).Decode(t, &r)
		if r.Status != "committed" || r.SettledAt == nil {
			t.Errorf("got %+v, want committed with settled_at", r)
		}
	}
	if onHand, reserved := s.stock(t, p.ID); onHand != 7 || reserved != 0 {
		t.Errorf("after commit: got on_hand %d reserved %d, want 7 and 0", onHand, reserved)
	}
	s.do(t, "POST", path(sold, "/release"), "", nil).WantProblem(t, http.StatusConflict, "reservation-committed")

	dropped := uuid.New()
	s.do(t, "POST", "/internal/reservations", "", reserveBody(dropped, 0, line{p.ID, 4})).Want(t, http.StatusCreated)
	for range 2 {
		var r reservation
		s.do(t, "POST", path(dropped, "/release"), "", nil).Want(t, http.StatusOK).Decode(t, &r)
		if r.Status != "released" {
			t.Errorf("got status %q, want released", r.Status)
		}
	}
	if onHand, reserved := s.stock(t, p.ID); onHand != 7 || reserved != 0 {
		t.Errorf("after release: got on_hand %d reserved %d, want 7 and 0", onHand, reserved)
	}
	s.do(t, "POST", path(dropped, "/commit"), "", nil).WantProblem(t, http.StatusConflict, "reservation-released")

	var got reservation
	s.do(t, "GET", path(sold, ""), "", nil).Want(t, http.StatusOK).Decode(t, &got)
	if got.Status != "committed" || len(got.Lines) != 1 || got.Lines[0] != (line{p.ID, 3}) {
		t.Errorf("got %+v, want the committed reservation of 3 units", got)
	}
	unknown := uuid.New()
	for _, req := range []struct{ method, path string }{{"GET", path(unknown, "")}, {"POST", path(unknown, "/commit")}, {"POST", path(unknown, "/release")}} {
		s.do(t, req.method, req.path, "", nil).WantProblem(t, http.StatusNotFound, "not-found")
	}
}

// TestExpirySweptOnce is acceptance 2, first half: reservations past their
// TTL are expired, and their stock returned, exactly once, with several
// sweepers running at once in small batches; a commit afterwards is 409
// reservation-expired and a release is a no-op.
func TestExpirySweptOnce(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	products := []product{s.create(t, seller, newProduct{OnHand: 100}), s.create(t, seller, newProduct{OnHand: 100})}
	const n = 40
	var orders []uuid.UUID
	for i := range n {
		order := uuid.New()
		orders = append(orders, order)
		s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 3600,
			line{products[0].ID, 1}, line{products[1].ID, 1 + i%2})).Want(t, http.StatusCreated)
	}
	keep := uuid.New() // not expired: must survive the sweeps
	s.do(t, "POST", "/internal/reservations", "", reserveBody(keep, 3600, line{products[0].ID, 5})).Want(t, http.StatusCreated)
	for _, o := range orders {
		s.expire(t, o, -time.Second)
	}

	sweeper := s.sweeper(t, 3) // many small batches, so the sweepers interleave
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for range 6 {
		wg.Go(func() {
			got, err := sweeper.SweepExpired(t.Context())
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(got))
		})
	}
	wg.Wait()
	if total.Load() != n {
		t.Errorf("the sweepers expired %d reservations, want %d (each exactly once)", total.Load(), n)
	}
	if onHand, reserved := s.stock(t, products[0].ID); onHand != 100 || reserved != 5 {
		t.Errorf("product 0: got on_hand %d reserved %d, want 100 and 5 (the live reservation)", onHand, reserved)
	}
	if onHand, reserved := s.stock(t, products[1].ID); onHand != 100 || reserved != 0 {
		t.Errorf("product 1: got on_hand %d reserved %d, want 100 and 0", onHand, reserved)
	}
	if again, err := sweeper.SweepExpired(t.Context()); err != nil || again != 0 {
		t.Errorf("a second sweep expired %d (%v), want 0", again, err)
	}
	s.do(t, "POST", "/internal/reservations/"+orders[0].String()+"/commit", "", nil).WantProblem(t, http.StatusConflict, "reservation-expired")
	var r reservation
	s.do(t, "POST", "/internal/reservations/"+orders[1].String()+"/release", "", nil).Want(t, http.StatusOK).Decode(t, &r)
	if r.Status != "expired" {
		t.Errorf("got status %q after releasing an expired reservation, want expired", r.Status)
	}
	if _, reserved := s.stock(t, products[1].ID); reserved != 0 {
		t.Errorf("got reserved %d after commit and release of expired reservations, want 0", reserved)
	}
}

// TestCommitRacesExpiry is acceptance 2, second half: a commit and two
// sweepers race over a reservation expiring about now, for many rounds.
// Each round has exactly one winner — the commit's answer matches the
// final status — and the stock moves once: on_hand drops only for the
// commits, reserved returns to 0.
func TestCommitRacesExpiry(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	const rounds, qty, stock = 40, 2, 1000
	p := s.create(t, seller, newProduct{OnHand: stock})
	sweeper := s.sweeper(t, 100)
	outcomes := map[string]int{}
	for round := range rounds {
		order := uuid.New()
		s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 3600, line{p.ID, qty})).Want(t, http.StatusCreated)
		// Due within a few milliseconds either side of now.
		s.expire(t, order, time.Duration(rand.IntN(8000)-4000)*time.Microsecond)
		var (
			wg     sync.WaitGroup
			commit response
			swept  atomic.Int64
		)
		wg.Go(func() {
			var err error
			if commit, err = s.send(t.Context(), "POST", "/internal/reservations/"+order.String()+"/commit", "", nil); err != nil {
				t.Error(err)
			}
		})
		for range 2 {
			wg.Go(func() {
				n, err := sweeper.SweepExpired(t.Context())
				if err != nil {
					t.Error(err)
				}
				swept.Add(int64(n))
			})
		}
		wg.Wait()
		var final reservation
		s.do(t, "GET", "/internal/reservations/"+order.String(), "", nil).Want(t, http.StatusOK).Decode(t, &final)
		switch {
		case commit.Status == http.StatusOK && final.Status == "committed" && swept.Load() == 0:
			outcomes["commit won"]++
		case commit.Status == http.StatusConflict && final.Status == "expired" && swept.Load() <= 1:
			outcomes["expiry won"]++
		default:
			t.Fatalf("round %d: got commit %d (%s), status %q, %d swept: not exactly one winner", round, commit.Status, commit.Body, final.Status, swept.Load())
		}
	}
	t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
	onHand, reserved := s.stock(t, p.ID)
	if want := stock - qty*outcomes["commit won"]; onHand != want || reserved != 0 {
		t.Errorf("got on_hand %d reserved %d, want %d and 0 (each round's stock moved once)", onHand, reserved, want)
	}
}

// TestSweeperRunsInService: the sweeper main starts returns the stock of a
// reservation whose TTL passes, with nobody calling.
func TestSweeperRunsInService(t *testing.T) {
	t.Parallel()
	s := startService(t, withEnv("INVENTORY_SWEEP_INTERVAL", "50ms"))
	seller := s.user(t, "seller", true)
	p := s.create(t, seller, newProduct{OnHand: 3})
	order := uuid.New()
	s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 1, line{p.ID, 3})).Want(t, http.StatusCreated)
	var r product
	s.do(t, "GET", "/v1/products/"+p.ID.String(), "", nil).Want(t, http.StatusOK).Decode(t, &r)
	if r.Available != 0 {
		t.Fatalf("got available %d while reserved, want 0", r.Available)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var res reservation
		s.do(t, "GET", "/internal/reservations/"+order.String(), "", nil).Want(t, http.StatusOK).Decode(t, &res)
		if res.Status == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation still %s 10s after its 1s TTL", res.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if onHand, reserved := s.stock(t, p.ID); onHand != 3 || reserved != 0 {
		t.Errorf("got on_hand %d reserved %d after expiry, want 3 and 0", onHand, reserved)
	}
	if !strings.Contains(s.Logs.String(), `"reservations expired"`) {
		t.Error("the sweeper did not log the expiry")
	}
}

// TestRestock: a committed reservation's units return to on_hand once —
// restocking again answers the same and moves nothing — and only a
// committed reservation can be restocked: held, released and expired ones
// are 409 (their units never left), an unknown order 404.
func TestRestock(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	a := s.create(t, seller, newProduct{OnHand: 10})
	b := s.create(t, seller, newProduct{OnHand: 10})
	path := func(order uuid.UUID, action string) string {
		return "/internal/reservations/" + order.String() + action
	}
	wantStock := func(when string, want map[uuid.UUID][2]int) {
		t.Helper()
		for id, w := range want {
			if onHand, reserved := s.stock(t, id); onHand != w[0] || reserved != w[1] {
				t.Errorf("%s: product %s: got on_hand %d reserved %d, want %d and %d", when, id, onHand, reserved, w[0], w[1])
			}
		}
	}

	sold := uuid.New()
	s.do(t, "POST", "/internal/reservations", "", reserveBody(sold, 0, line{a.ID, 3}, line{b.ID, 2})).Want(t, http.StatusCreated)
	var committed reservation
	s.do(t, "POST", path(sold, "/commit"), "", nil).Want(t, http.StatusOK).Decode(t, &committed)
	wantStock("after commit", map[uuid.UUID][2]int{a.ID: {7, 0}, b.ID: {8, 0}})
	// An archived product takes its units back too: they are the seller's.
	s.do(t, "POST", "/v1/seller/products/"+b.ID.String()+"/archive", seller.Token, nil).Want(t, http.StatusOK)

	for i := range 2 {
		var r reservation
		s.do(t, "POST", path(sold, "/restock"), "", nil).Want(t, http.StatusOK).Decode(t, &r)
		if r.Status != "restocked" || len(r.Lines) != 2 || r.SettledAt == nil || !r.SettledAt.Equal(*committed.SettledAt) {
			t.Errorf("restock %d: got %+v, want restocked, its 2 lines, settled when it was committed", i+1, r)
		}
		wantStock(fmt.Sprintf("after restock %d", i+1), map[uuid.UUID][2]int{a.ID: {10, 0}, b.ID: {10, 0}})
	}
	var got reservation
	s.do(t, "GET", path(sold, ""), "", nil).Want(t, http.StatusOK).Decode(t, &got)
	if got.Status != "restocked" {
		t.Errorf("got status %q, want restocked", got.Status)
	}
	// Restocked is final: a commit is refused, a release has nothing to
	// give back, and neither moves the stock.
	s.do(t, "POST", path(sold, "/commit"), "", nil).WantProblem(t, http.StatusConflict, "reservation-restocked")
	s.do(t, "POST", path(sold, "/release"), "", nil).Want(t, http.StatusOK).Decode(t, &got)
	if got.Status != "restocked" {
		t.Errorf("got status %q after a release, want restocked", got.Status)
	}
	wantStock("after commit and release of a restocked reservation", map[uuid.UUID][2]int{a.ID: {10, 0}, b.ID: {10, 0}})

	// Not committed: nothing to restock.
	held, released, expired := uuid.New(), uuid.New(), uuid.New()
	for _, o := range []uuid.UUID{held, released, expired} {
		s.do(t, "POST", "/internal/reservations", "", reserveBody(o, 0, line{a.ID, 1})).Want(t, http.StatusCreated)
	}
	s.do(t, "POST", path(released, "/release"), "", nil).Want(t, http.StatusOK)
	s.expire(t, expired, -time.Second)
	if n, err := s.sweeper(t, 10).SweepExpired(t.Context()); err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	tests := []struct {
		name   string
		order  uuid.UUID
		status int
		slug   string
	}{
		{"held", held, http.StatusConflict, "reservation-held"},
		{"released", released, http.StatusConflict, "reservation-released"},
		{"expired", expired, http.StatusConflict, "reservation-expired"},
		{"unknown order", uuid.New(), http.StatusNotFound, "not-found"},
	}
	for _, tt := range tests {
		s.do(t, "POST", path(tt.order, "/restock"), "", nil).WantProblem(t, tt.status, tt.slug)
	}
	wantStock("after refused restocks", map[uuid.UUID][2]int{a.ID: {10, 1}})
	for o, want := range map[uuid.UUID]string{held: "held", released: "released", expired: "expired"} {
		s.do(t, "GET", path(o, ""), "", nil).Want(t, http.StatusOK).Decode(t, &got)
		if got.Status != want {
			t.Errorf("got status %q after a refused restock, want %s", got.Status, want)
		}
	}
	s.do(t, "POST", "/internal/reservations/not-a-uuid/restock", "", nil).WantProblem(t, http.StatusBadRequest, "invalid-request")
}

// TestRestockRace: concurrent restocks of one committed reservation (the
// saga retried on another instance, two replicas recovering the same
// cancellation) all answer 200, and exactly one applies: the units come
// back once per round.
func TestRestockRace(t *testing.T) {
	t.Parallel()
	s := startService(t)
	seller := s.user(t, "seller", true)
	const rounds, racers, qty, stock = 20, 8, 3, 100
	p := s.create(t, seller, newProduct{OnHand: stock})
	for round := range rounds {
		order := uuid.New()
		s.do(t, "POST", "/internal/reservations", "", reserveBody(order, 0, line{p.ID, qty})).Want(t, http.StatusCreated)
		s.do(t, "POST", "/internal/reservations/"+order.String()+"/commit", "", nil).Want(t, http.StatusOK)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range racers {
			wg.Go(func() {
				<-start
				r, err := s.send(t.Context(), "POST", "/internal/reservations/"+order.String()+"/restock", "", nil)
				switch {
				case err != nil:
					t.Error(err)
				case r.Status != http.StatusOK:
					t.Errorf("round %d: got status %d: %s", round, r.Status, r.Body)
				}
			})
		}
		close(start)
		wg.Wait()
		if onHand, reserved := s.stock(t, p.ID); onHand != stock || reserved != 0 {
			t.Fatalf("round %d: got on_hand %d reserved %d after %d concurrent restocks, want %d and 0 (restocked once)", round, onHand, reserved, racers, stock)
		}
	}
	if got := strings.Count(s.Logs.String(), `"reservation restocked"`); got != rounds {
		t.Errorf("the service logged %d restocks, want %d (one per round)", got, rounds)
	}
}
