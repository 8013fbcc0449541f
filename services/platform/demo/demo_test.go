package demo

import "testing"

// TestSellers: a seller's id depends on the seed and its index alone, and
// two sellers never share an id or an address.
func TestSellers(t *testing.T) {
	if SellerID(1, 3) != SellerID(1, 3) {
		t.Fatal("the same seller got two ids")
	}
	ids, emails := map[string]bool{}, map[string]bool{}
	for _, seed := range []uint64{1, 2} {
		for i := range 100 {
			id := SellerID(seed, i)
			if id.Version() != 5 || ids[id.String()] {
				t.Fatalf("seller %d of seed %d: id %s (version %d) repeated or not name-based", i, seed, id, id.Version())
			}
			ids[id.String()] = true
			if seed == 1 {
				if emails[SellerEmail(i)] {
					t.Fatalf("seller %d: address %s repeated", i, SellerEmail(i))
				}
				emails[SellerEmail(i)] = true
			}
		}
	}
}
