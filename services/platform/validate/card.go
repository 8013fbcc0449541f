package validate

import "time"

// Card is a payment card as a buyer types it. The edge checks it before
// any order exists (so that a typo never creates one) and payment checks
// it again before the processor sees it, both with CheckCard.
type Card struct {
	Number            string
	ExpMonth, ExpYear int
	CVC, Holder       string
}

// The bounds of a card's fields.
const (
	// MaxCardYears is how far ahead a card may expire: cards are issued
	// for a few years, so a year further off is a typo (2062 for 2026).
	MaxCardYears = 20
	// MaxHolderLen bounds the name on a card.
	MaxHolderLen = 100
)

// CheckCard records each fault of c against prefix+"number", "exp_month",
// "exp_year", "cvc" and "holder" (prefix is "card." in a request that
// nests it). The details never repeat the number or the CVC.
//
// now is the time of the check: a card accepted at the edge may have
// expired when payment checks it, if the checkout crossed the end of the
// card's month; the processor would decline it then anyway.
func CheckCard(e *Errors, prefix string, c Card, now time.Time) {
	e.Check(prefix+"number", CardNumber(c.Number))
	if field, detail := CardExpiry(c.ExpMonth, c.ExpYear, now); field != "" {
		e.Check(prefix+field, detail)
	}
	e.Check(prefix+"cvc", CVC(c.CVC))
	e.Check(prefix+"holder", CardHolder(c.Holder))
}

// CardNumber checks a card number: 12 to 19 digits passing the Luhn check.
func CardNumber(number string) string {
	switch {
	case number == "":
		return "is required"
	case !digits(number):
		return "must be digits only, without spaces"
	case len(number) < 12 || len(number) > 19:
		return "must be 12 to 19 digits"
	case !Luhn(number):
		return "is not a valid card number (Luhn check failed)"
	}
	return ""
}

// CardExpiry checks that a card has not expired at now (it is valid until
// the end of its expiry month, UTC) and expires at most MaxCardYears
// ahead. It returns the field at fault ("exp_month" or "exp_year") with
// the problem, or "", "".
func CardExpiry(month, year int, now time.Time) (field, detail string) {
	now = now.UTC()
	switch {
	case month < 1 || month > 12:
		return "exp_month", "must be between 1 and 12"
	case year < 1000 || year > 9999:
		return "exp_year", "must have four digits"
	case year < now.Year():
		return "exp_year", "is in the past: the card has expired"
	case year == now.Year() && month < int(now.Month()):
		return "exp_month", "is in the past: the card has expired"
	case year > now.Year()+MaxCardYears:
		return "exp_year", "is too far in the future"
	}
	return "", ""
}

// CVC checks a card verification code: 3 or 4 digits.
func CVC(cvc string) string {
	switch {
	case cvc == "":
		return "is required"
	case !digits(cvc) || len(cvc) < 3 || len(cvc) > 4:
		return "must be 3 or 4 digits"
	}
	return ""
}

// CardHolder checks the optional name on a card: one line of at most
// MaxHolderLen characters.
func CardHolder(holder string) string { return Line(holder, false, MaxHolderLen) }

// Luhn reports whether a string of digits passes the Luhn checksum.
func Luhn(number string) bool {
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		d := int(number[i] - '0')
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

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
