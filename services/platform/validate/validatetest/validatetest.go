// Package validatetest draws the values that cross the shop's boundaries
// (cards, amounts, prices, carts, currencies, idempotency keys) for
// property tests: each module runs Property against its own validation
// entry point, so that together they prove what platform/validate
// promises. The edge accepts no value that the shared rules refuse, each
// service behind it accepts every value they accept, and so a value the
// edge accepts is accepted everywhere behind it.
//
// The draws crowd around each rule's edges (check digits, lengths, expiry
// months and years, the amount bounds, retired, fund and test currency
// codes), where two copies of a rule drift apart, and are seeded: a
// failure replays.
package validatetest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// N is how many values one property draws.
const N = 20_000

// maxShown bounds the counterexamples a failing property prints.
const maxShown = 8

// Property runs prop on N draws as the subtest name, and fails it with the
// number of counterexamples and the first few. prop returns "" when the
// draw satisfies the property, else the counterexample, described. The
// seed is fixed by name, so every run draws the same values.
func Property(t *testing.T, name string, prop func(g *Gen) string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		h := fnv.New64a()
		h.Write([]byte(name))
		seed := h.Sum64()
		g := &Gen{r: rand.New(rand.NewPCG(seed, seed>>1))}
		var shown []string
		failed := 0
		for range N {
			if c := prop(g); c != "" {
				if failed++; len(shown) < maxShown {
					shown = append(shown, c)
				}
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d draws (seed %d) break the property; the first %d:\n\t%s",
				failed, N, seed, len(shown), strings.Join(shown, "\n\t"))
		}
	})
}

// Faults describes what err says is wrong: each field at fault with its
// detail, for a counterexample's description.
func Faults(err error) string {
	e, ok := apierr.As(err)
	if !ok || len(e.Fields) == 0 {
		return fmt.Sprint(err)
	}
	parts := make([]string, 0, 3)
	for _, f := range e.Fields[:min(len(e.Fields), 3)] {
		parts = append(parts, f.Field+": "+f.Detail)
	}
	if len(e.Fields) > 3 {
		parts = append(parts, fmt.Sprintf("and %d more", len(e.Fields)-3))
	}
	return strings.Join(parts, "; ")
}

// Gen draws values; Property gives each property its own.
type Gen struct{ r *rand.Rand }

// pick returns one of vs.
func pick[T any](g *Gen, vs ...T) T { return vs[g.r.IntN(len(vs))] }

// chance is true with probability p.
func (g *Gen) chance(p float64) bool { return g.r.Float64() < p }

// Card draws a card, about half of them valid at now.
func (g *Gen) Card(now time.Time) validate.Card {
	return validate.Card{
		Number:   g.CardNumber(),
		ExpMonth: g.ExpMonth(),
		ExpYear:  g.ExpYear(now),
		CVC:      g.CVC(),
		Holder:   g.Holder(),
	}
}

// CardNumber draws a number of 10 to 21 digits, most of them passing the
// Luhn check, some with a space, a dash or a letter in them.
func (g *Gen) CardNumber() string {
	n := 10 + g.r.IntN(12)
	if g.chance(0.7) {
		n = 12 + g.r.IntN(8)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	if g.chance(0.75) {
		// Fix the check digit.
		b[n-1] = '0'
		for d := byte('0'); d <= '9'; d++ {
			if b[n-1] = d; validate.Luhn(string(b)) {
				break
			}
		}
	}
	s := string(b)
	switch g.r.IntN(30) {
	case 0:
		return ""
	case 1:
		return s[:4] + " " + s[4:]
	case 2:
		return s[:4] + "-" + s[4:]
	case 3:
		return s[:n-1] + "x"
	}
	return s
}

// ExpMonth draws a month, sometimes out of 1 to 12.
func (g *Gen) ExpMonth() int {
	if g.chance(0.1) {
		return pick(g, -1, 0, 13, 14, 99)
	}
	return 1 + g.r.IntN(12)
}

// ExpYear draws a year around now's and around every window's edge that
// the shop's modules have used: 20, 50 years ahead, 2200.
func (g *Gen) ExpYear(now time.Time) int {
	y := now.UTC().Year()
	switch g.r.IntN(6) {
	case 0:
		return pick(g, 0, 26, 99, 999, 1000, 1999, 2000, 2199, 2200, 2201, 9999, 10000)
	case 1:
		return y + validate.MaxCardYears + g.r.IntN(3) - 1
	case 2:
		return y + 50 + g.r.IntN(3) - 1
	case 3:
		return y + g.r.IntN(200)
	}
	return y - 2 + g.r.IntN(15)
}

// CVC draws a code of 0 to 5 digits, sometimes with a letter.
func (g *Gen) CVC() string {
	b := make([]byte, pick(g, 0, 2, 3, 3, 4, 4, 5))
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	if len(b) > 0 && g.chance(0.05) {
		b[0] = 'a'
	}
	return string(b)
}

// Holder draws the name on a card: none, a name, one at the length limit
// in characters of two bytes, one with a line break or a control
// character.
func (g *Gen) Holder() string {
	switch g.r.IntN(8) {
	case 0, 1:
		return ""
	case 2:
		return strings.Repeat("é", validate.MaxHolderLen-1+g.r.IntN(3))
	case 3:
		return pick(g, "Ada\nLovelace", "Ada\tLovelace", "Ada\x00", "Ada\x7f", "\xff")
	}
	return pick(g, "Ada Lovelace", "J. R. Bloggs", "Łukasz Żółć", "李小龍")
}

// amountEdges are the bounds the shop's modules have had, and int64's.
var amountEdges = []int64{
	validate.MaxPrice, validate.MaxAmount,
	100_000_000_000,   // payment's former bound
	1_000_000_000_000, // inventory's former bound
	1 << 53, 1 << 62, math.MaxInt64,
}

// Amount draws an amount of minor units: often near 0 or one of the
// bounds the shop has used, else of any magnitude up to int64's.
func (g *Gen) Amount() int64 {
	switch g.r.IntN(4) {
	case 0:
		return pick[int64](g, math.MinInt64, -1, 0, 1, 2)
	case 1:
		e := pick(g, amountEdges...)
		return e + int64(g.r.IntN(3)) - 1
	}
	// A magnitude of 10^0 to 10^18, uniform in its decade.
	hi := int64(1)
	for range g.r.IntN(19) {
		hi *= 10
	}
	return 1 + g.r.Int64N(hi)
}

// Line is one line of a cart.
type Line struct {
	Price    int64
	Quantity int
}

// Cart is the lines a buyer checks out, all in one currency.
type Cart struct {
	Currency string
	Lines    []Line
}

// Cart draws a cart. A fifth hold MaxLines lines, or one fewer or one
// more, most at MaxQuantity units of MaxPrice: the largest sums the shared
// rules allow.
func (g *Gen) Cart() Cart {
	c := Cart{Currency: g.Currency()}
	if g.chance(0.2) {
		others := pick(g, 0, 0.01, 0.1) // the share of lines below the largest
		for range validate.MaxLines - 1 + g.r.IntN(3) {
			l := Line{Price: validate.MaxPrice, Quantity: validate.MaxQuantity}
			if g.chance(others) {
				l = Line{Price: 1 + g.r.Int64N(validate.MaxPrice+1), Quantity: 1 + g.r.IntN(validate.MaxQuantity+1)}
			}
			c.Lines = append(c.Lines, l)
		}
		return c
	}
	for range 1 + g.r.IntN(5) {
		c.Lines = append(c.Lines, Line{Price: g.Amount(), Quantity: g.Quantity()})
	}
	return c
}

// Valid reports whether the shared rules accept every line of c (a price,
// a quantity of at least 1, at most MaxLines of them) and its currency.
func (c Cart) Valid() bool {
	if len(c.Lines) == 0 || len(c.Lines) > validate.MaxLines || validate.Currency(c.Currency) != "" {
		return false
	}
	for _, l := range c.Lines {
		if validate.Price(l.Price) != "" || l.Quantity < 1 || l.Quantity > validate.MaxQuantity {
			return false
		}
	}
	return true
}

// Total is the sum of c's lines, and false if it overflows int64.
func (c Cart) Total() (int64, bool) {
	var total int64
	for _, l := range c.Lines {
		q := int64(l.Quantity)
		if q < 0 || (q > 0 && (l.Price < 0 || l.Price > math.MaxInt64/q)) {
			return 0, false
		}
		if total > math.MaxInt64-l.Price*q {
			return 0, false
		}
		total += l.Price * q
	}
	return total, true
}

// String describes the cart briefly: its currency, line count and total.
func (c Cart) String() string {
	total, ok := c.Total()
	if !ok {
		return fmt.Sprintf("%d lines in %s summing beyond int64", len(c.Lines), c.Currency)
	}
	return fmt.Sprintf("%d lines in %s summing to %d", len(c.Lines), c.Currency, total)
}

// Quantity draws a quantity of one product, often near the bounds the
// shop's modules use (99 a cart line, 1000 a reservation, 10000 an order
// line).
func (g *Gen) Quantity() int {
	if g.chance(0.3) {
		return pick(g, -1, 0, 1, 98, 99, 100, 999, 1000, 1001, 9999, 10000, 10001)
	}
	return 1 + g.r.IntN(validate.MaxQuantity)
}

// otherCodes are three-letter codes that are not currencies money is paid
// in: retired currencies, fund codes, precious metals, units of account,
// codes for tests and for no currency, and codes never assigned.
var otherCodes = []string{
	"DEM", "FRF", "ITL", "ESP", "HRK", "SLL", "ZWL", "CUC", "VEF", "MRO", "STD", "LTL", "BYR",
	"BOV", "CLF", "COU", "MXV", "USN", "UYI", "UYW", "CHE", "CHW",
	"XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA",
	"XTS", "XXX", "ABC", "XYZ", "EEE",
}

// Currency draws a currency code: one in circulation half the time, else
// a code that is not one, or a malformed one.
func (g *Gen) Currency() string {
	switch g.r.IntN(6) {
	case 0, 1, 2:
		return pick(g, validate.Currencies()...)
	case 3:
		return pick(g, otherCodes...)
	case 4:
		return pick(g, "", "eur", "Eur", "EU", "EURO", "E1R", "€", "EU\x00", " EUR")
	}
	b := []byte{byte('A' + g.r.IntN(26)), byte('A' + g.r.IntN(26)), byte('A' + g.r.IntN(26))}
	return string(b)
}

// Key draws an idempotency key: printable ASCII of lengths around the
// limit, sometimes empty or with a character outside printable ASCII.
func (g *Gen) Key() string {
	n := 1 + g.r.IntN(40)
	if g.chance(0.3) {
		n = validate.MaxKeyLen - 2 + g.r.IntN(5)
	}
	if g.chance(0.05) {
		n = 254 + g.r.IntN(3)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x20 + g.r.IntN(0x7f-0x20))
	}
	switch g.r.IntN(20) {
	case 0:
		return ""
	case 1:
		b[0] = 0x7f
	case 2:
		b[0] = '\n'
	case 3:
		return "clé-" + string(b[:min(n, 10)])
	}
	return string(b)
}
