package payments

import (
	"fmt"
	"strings"
)

// Card is a card as a caller sends it, checked at the HTTP boundary with
// platform/validate's card rules (the edge's). It travels from there to
// the processor and nowhere else: it formats itself (fmt, JSON, hclog) as
// its brand and last 4 digits, so that a careless log line cannot leak it.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
	Holder   string
}

// Summary is what may be kept of the card.
func (c Card) Summary() CardSummary {
	return CardSummary{Brand: Brand(c.Number), Last4: last4(c.Number), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear}
}

// String implements fmt.Stringer without the number and CVC.
func (c Card) String() string {
	return fmt.Sprintf("%s ending %s, expires %02d/%d", Brand(c.Number), last4(c.Number), c.ExpMonth, c.ExpYear)
}

// GoString implements fmt.GoStringer (%#v) without the number and CVC.
func (c Card) GoString() string { return "payments.Card{" + c.String() + "}" }

// MarshalJSON keeps the number and CVC out of any JSON the card is put in.
// The processor client sends them with its own wire type.
func (c Card) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", c.String())), nil }

func last4(number string) string {
	if len(number) < 4 {
		return ""
	}
	return number[len(number)-4:]
}

// Brand names the card network of number from its leading digits.
func Brand(number string) string {
	prefix := func(n int) int {
		if len(number) < n {
			return -1
		}
		v := 0
		for _, c := range number[:n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	switch {
	case strings.HasPrefix(number, "4"):
		return "visa"
	case prefix(2) >= 51 && prefix(2) <= 55, prefix(4) >= 2221 && prefix(4) <= 2720:
		return "mastercard"
	case prefix(2) == 34 || prefix(2) == 37:
		return "amex"
	case prefix(4) == 6011 || prefix(2) == 65 || (prefix(3) >= 644 && prefix(3) <= 649):
		return "discover"
	}
	return "unknown"
}
