package inventory

import (
	"fmt"
	"strings"
	"time"

	"github.com/mylittleshopping/shop/services/platform/validate"
)

// The limits the HTTP boundary enforces (and the schema backs with CHECKs).
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 5000
	// MaxOnHand keeps on_hand + any accepted delta within PostgreSQL's
	// integer.
	MaxOnHand = 1_000_000_000
	// MaxCartQuantity is the most of one product a cart line holds, and
	// MaxCartLines the most products one cart holds: platform/validate's,
	// whose MaxAmount, the most payment charges, is the sum of the largest
	// cart at the highest price (validate.Price, which prices are checked
	// with).
	MaxCartQuantity = validate.MaxQuantity
	MaxCartLines    = validate.MaxLines
	// MaxReserveQuantity is the most of one product an order reserves (at
	// least MaxCartQuantity: an order reserves its cart's lines).
	MaxReserveQuantity = 1000
	// MaxReservationLines is the most products one order reserves.
	MaxReservationLines = 100
	// MaxReservationTTL bounds how long stock is held for one checkout.
	MaxReservationTTL = 24 * time.Hour
	// MaxQueryLen bounds a catalogue search's text.
	MaxQueryLen = 200
)

// NormalizeName trims the spaces around a product name.
func NormalizeName(s string) string { return strings.TrimSpace(s) }

// CheckName returns what is wrong with a normalized product name, or "".
func CheckName(name string) string { return validate.Line(name, true, MaxNameLen) }

// NormalizeDescription trims the spaces around a description.
func NormalizeDescription(s string) string { return strings.TrimSpace(s) }

// CheckDescription returns what is wrong with a normalized description, or
// "". Line breaks and tabs are allowed; other control characters are not.
func CheckDescription(d string) string { return validate.Text(d, false, MaxDescriptionLen) }

// CheckOnHand returns what is wrong with a stock level, or "".
func CheckOnHand(n int) string {
	if n < 0 || n > MaxOnHand {
		return fmt.Sprintf("must be between 0 and %d", MaxOnHand)
	}
	return ""
}

// CheckDelta returns what is wrong with a stock adjustment, or "".
func CheckDelta(d int) string {
	switch {
	case d == 0:
		return "must not be 0"
	case d < -MaxOnHand || d > MaxOnHand:
		return fmt.Sprintf("must be between %d and %d", -MaxOnHand, MaxOnHand)
	}
	return ""
}

// CheckCartQuantity returns what is wrong with a cart line's quantity, or
// "". 0 is valid: it removes the line.
func CheckCartQuantity(q int) string {
	if q < 0 || q > MaxCartQuantity {
		return fmt.Sprintf("must be between 0 (remove) and %d", MaxCartQuantity)
	}
	return ""
}

// CheckReserveQuantity returns what is wrong with a reservation line's
// quantity, or "".
func CheckReserveQuantity(q int) string {
	if q < 1 || q > MaxReserveQuantity {
		return fmt.Sprintf("must be between 1 and %d", MaxReserveQuantity)
	}
	return ""
}
