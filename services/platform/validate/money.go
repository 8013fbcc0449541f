package validate

import (
	"fmt"
	"slices"
	"strings"
)

// The bounds of money and of carts, shared by every module that checks
// them, so that an amount one module accepts is accepted behind it.
//
// A checkout charges the sum of a cart: at most MaxLines lines of at most
// MaxQuantity units, each at a price of at most MaxPrice. MaxAmount, the
// most a total or a charge may be, is that sum at its largest:
//
//	MaxPrice × MaxQuantity × MaxLines = 10¹¹ × 99 × 100 = 990 000 000 000 000 (9.9 × 10¹⁴)
//
// so no cart the edge and inventory accept can add up to a total that
// payment refuses. MaxAmount is below 2⁵³ = 9 007 199 254 740 992, so a
// client that reads JSON numbers as float64 (a browser) reads every amount
// exactly, and far below int64's 9.22 × 10¹⁸ (PostgreSQL's bigint), so sums
// of a few amounts (a payment's refunds and reservations) cannot overflow.
// 10¹¹ minor units is a billion of a two-decimal currency, 10¹¹ yen, or
// 10⁸ of a three-decimal currency: far above any product.
const (
	// MaxPrice is the most one unit of a product may cost, in minor units.
	MaxPrice = 100_000_000_000
	// MaxQuantity is the most of one product a cart line holds.
	MaxQuantity = 99
	// MaxLines is the most products (lines) one cart holds.
	MaxLines = 100
	// MaxAmount is the most a total, a charge or a refund may be, in minor
	// units: the largest cart's sum.
	MaxAmount = MaxPrice * MaxQuantity * MaxLines
)

// Price checks a product's price in minor units: 1 to MaxPrice.
func Price(amount int64) string {
	switch {
	case amount <= 0:
		return "must be a positive number of minor units (1299 for 12.99)"
	case amount > MaxPrice:
		return fmt.Sprintf("must be at most %d", int64(MaxPrice))
	}
	return ""
}

// Amount checks an amount to charge or refund, in minor units: 1 to
// MaxAmount.
func Amount(amount int64) string {
	if amount < 1 || amount > MaxAmount {
		return fmt.Sprintf("must be between 1 and %d (minor units)", int64(MaxAmount))
	}
	return ""
}

// Total checks a total a caller states (the one a buyer expects to pay), in
// minor units: 0 to MaxAmount; no cart sums to more.
func Total(amount int64) string { return Range(amount, 0, MaxAmount) }

// Currency checks an ISO 4217 code of a currency in circulation (see
// MinorUnits): present, three upper-case letters, and known.
func Currency(code string) string {
	switch {
	case code == "":
		return "is required"
	case len(code) != 3 || strings.IndexFunc(code, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0:
		return "must be an ISO 4217 code of three upper-case letters, like EUR"
	case !isCurrency(code):
		return fmt.Sprintf("%q is not an ISO 4217 currency in circulation", code)
	}
	return ""
}

// MinorUnits is the number of decimals of currency code's minor unit (2
// for EUR's cents, 0 for JPY, 3 for BHD's fils), as ISO 4217 gives it, and
// whether code is a currency at all.
func MinorUnits(code string) (int, bool) {
	n, ok := minorUnits[code]
	return n, ok
}

// Currencies lists the codes Currency accepts, sorted.
func Currencies() []string {
	codes := make([]string, 0, len(minorUnits))
	for c := range minorUnits {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

func isCurrency(code string) bool {
	_, ok := minorUnits[code]
	return ok
}

// minorUnits holds the currencies of ISO 4217's list one (as amended to
// 2025) that money is paid in: no fund codes (BOV, CLF, USN, …), precious
// metals (XAU, …), units of account (XDR, XSU, XUA), nor the codes for
// tests and "no currency" (XTS, XXX). The minor units are ISO's (checked
// against the JDK's java.util.Currency, which follows the ISO amendments),
// not CLDR's display digits: CLDR shows IDR, IRR or COP without decimals,
// but their minor unit is still a hundredth.
var minorUnits = func() map[string]int {
	const (
		all = `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP
DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK
LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF
XPF YER ZAR ZMW ZWG`
		// Every other currency has two decimals.
		none  = `BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF`
		three = `BHD IQD JOD KWD LYD OMR TND`
	)
	m := map[string]int{}
	for _, c := range strings.Fields(all) {
		m[c] = 2
	}
	for n, codes := range map[int]string{0: none, 3: three} {
		for _, c := range strings.Fields(codes) {
			if _, ok := m[c]; !ok {
				panic("validate: " + c + " has minor units but is not a currency")
			}
			m[c] = n
		}
	}
	return m
}()
