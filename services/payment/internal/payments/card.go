package payments

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Card is a card as a caller sends it. It travels from the HTTP boundary to
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

// The checks below return "" when the value is fine, else what is wrong
// with it, for the boundary to report against the field. They never repeat
// the value: it may be a card number.

// CheckCardNumber checks a card number: 12 to 19 digits passing Luhn.
func CheckCardNumber(number string) string {
	switch {
	case number == "":
		return "is required"
	case !allDigits(number):
		return "must be digits only, without spaces"
	case len(number) < 12 || len(number) > 19:
		return "must be 12 to 19 digits"
	case !luhn(number):
		return "is not a valid card number (Luhn check failed)"
	}
	return ""
}

// CheckExpiry checks that the card has not expired at now: a card is valid
// until the end of its expiry month, in UTC. It returns the field at fault
// ("exp_month" or "exp_year") with the problem.
func CheckExpiry(month, year int, now time.Time) (field, detail string) {
	switch {
	case month < 1 || month > 12:
		return "exp_month", "must be between 1 and 12"
	case year < 1000 || year > 9999:
		return "exp_year", "must have four digits"
	}
	now = now.UTC()
	switch {
	case year < now.Year():
		return "exp_year", "is in the past: the card has expired"
	case year == now.Year() && month < int(now.Month()):
		return "exp_month", "is in the past: the card has expired"
	case year > now.Year()+50:
		return "exp_year", "is too far in the future"
	}
	return "", ""
}

// CheckCVC checks a card verification code: 3 or 4 digits.
func CheckCVC(cvc string) string {
	switch {
	case cvc == "":
		return "is required"
	case !allDigits(cvc) || len(cvc) < 3 || len(cvc) > 4:
		return "must be 3 or 4 digits"
	}
	return ""
}

// MaxHolderLen bounds the name on a card.
const MaxHolderLen = 100

// CheckHolder checks the optional name on the card.
func CheckHolder(holder string) string {
	if len([]rune(holder)) > MaxHolderLen {
		return fmt.Sprintf("must be at most %d characters", MaxHolderLen)
	}
	for _, r := range holder {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// MaxAmount bounds an amount (a billion in major units) so that sums of
// amounts never come near overflowing.
const MaxAmount = 100_000_000_000

// CheckAmount checks an amount in minor units.
func CheckAmount(amount int64) string {
	if amount < 1 || amount > MaxAmount {
		return fmt.Sprintf("must be between 1 and %d (minor units)", int64(MaxAmount))
	}
	return ""
}

// CheckCurrency checks an ISO 4217 code.
func CheckCurrency(code string) string {
	if len(code) != 3 || !currencies[code] {
		return "must be an ISO 4217 currency code in upper case, such as EUR"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// luhn reports whether the digits pass the Luhn checksum.
func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// currencies are the active ISO 4217 codes (list one, 2024), without funds
// codes and precious metals.
var currencies = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`
		AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
		BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP
		DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
		IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK
		LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
		NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
		SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
		TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF
		XPF YER ZAR ZMW ZWG`) {
		currencies[c] = true
	}
}
