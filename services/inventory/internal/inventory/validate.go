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
	// MaxAmount is ten billion units of a currency: far above any product,
	// and low enough that 99 × MaxAmount × MaxCartLines fits an int64.
	MaxAmount = 1_000_000_000_000
	// MaxOnHand keeps on_hand + any accepted delta within PostgreSQL's
	// integer.
	MaxOnHand = 1_000_000_000
	// MaxCartQuantity is the most of one product a cart line holds.
	MaxCartQuantity = 99
	// MaxCartLines is the most products one cart holds.
	MaxCartLines = 100
	// MaxReserveQuantity is the most of one product an order reserves.
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

// CheckAmount returns what is wrong with a price amount, or "".
func CheckAmount(amount int64) string {
	switch {
	case amount <= 0:
		return "must be a positive number of minor units (1299 for 12.99)"
	case amount > MaxAmount:
		return fmt.Sprintf("must be at most %d", int64(MaxAmount))
	}
	return ""
}

// CheckCurrency returns what is wrong with a currency code, or "".
func CheckCurrency(code string) string {
	switch {
	case code == "":
		return "is required"
	case len(code) != 3 || strings.ToUpper(code) != code || !isLetters(code):
		return "must be an ISO 4217 code of 3 capital letters (like EUR)"
	case !currencies[code]:
		return fmt.Sprintf("%q is not an ISO 4217 currency", code)
	}
	return ""
}

func isLetters(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

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

// currencies are the ISO 4217 codes of currencies in circulation (list
// one, 2025), without fund codes (BOV, CLF, …), precious metals and
// testing codes (XAU, XTS, XXX, …): a price is in money one can pay with.
var currencies = func() map[string]bool {
	const codes = `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND
BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP
DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR
ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO
NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG
SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG`
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()
