// Package demo names the demo shop's sellers, which two services share:
// inventory's demo catalogue is sold by them, and auth ensures their
// accounts, so that the demo buyer can check the demo catalogue out. A
// seller is named by the catalogue's seed and its index alone.
package demo

import (
	"fmt"

	"github.com/google/uuid"
)

// SellerID is the account id of demo seller i of the catalogue of seed: a
// name-based UUID (version 5), the same in every service and every run.
func SellerID(seed uint64, i int) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "https://mylittleshopping.dev/demo/%d/sellers/%d", seed, i))
}

// SellerEmail is the address of demo seller i.
func SellerEmail(i int) string {
	return fmt.Sprintf("seller-%02d@demo.shop.example.com", i+1)
}
