package checkout

import "testing"

// TestOrderIDInDetail reads the order orders names in its 409, even when
// the client's key (quoted before it) mimics the phrase.
func TestOrderIDInDetail(t *testing.T) {
	t.Parallel()
	const real = "0190d6a4-7319-7000-8000-000000000001"
	const forged = "0190d6a4-7319-7000-8000-00000000dead"
	details := []string{
		`Idempotency-Key "k-1" already created order ` + real + ` with other content; use a new key for a new checkout`,
		`Idempotency-Key "already created order ` + forged + `" already created order ` + real + ` with other content; use a new key`,
	}
	for _, d := range details {
		all := orderIDInDetail.FindAllStringSubmatch(d, -1)
		if len(all) == 0 || all[len(all)-1][1] != real {
			t.Errorf("%s: got %v, want %s", d, all, real)
		}
	}
}
