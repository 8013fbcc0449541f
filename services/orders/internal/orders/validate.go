package orders

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/text/language"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// The limits the HTTP boundary enforces (the migrations' CHECKs repeat
// them, so a bug cannot store more).
const (
	MaxNameLen        = 100
	MaxAddressLineLen = 200
	MaxCityLen        = 100
	MaxPostalCodeLen  = 20
	MaxProductNameLen = 200
	MaxEmailLen       = validate.MaxEmailLen
	MaxReasonLen      = 500
	MaxCarrierLen     = 100
	MaxTrackingLen    = 100
	// MaxIdempotencyLen is the edge's bound on a checkout key, which
	// orders checks as text: it takes any the edge takes (printable ASCII,
	// validate.IdempotencyKey) and more (TestOrderByKey's "é").
	MaxIdempotencyLen = validate.MaxKeyLen
	MaxLines          = 100
	MaxQuantity       = 10000
)

// NormalizeText is the form free text is stored under: trimmed.
func NormalizeText(s string) string { return strings.TrimSpace(s) }

// CheckText returns what is wrong with normalized free text of at most max
// characters, or "". Control characters are refused: they have no place in
// an address or a name, and would break email headers and logs.
func CheckText(s string, required bool, max int) string { return validate.Line(s, required, max) }

var alpha2 = regexp.MustCompile(`^[A-Z]{2}$`)

// CheckCountry returns what is wrong with a country code, or "": it must be
// an ISO 3166-1 alpha-2 country in capitals (FR, not fr, FRA or UK).
func CheckCountry(code string) string {
	if code == "" {
		return "is required"
	}
	if !alpha2.MatchString(code) {
		return "must be an ISO 3166-1 alpha-2 code in capitals, like FR"
	}
	r, err := language.ParseRegion(code)
	if err != nil || !r.IsCountry() {
		return fmt.Sprintf("%q is not an ISO 3166-1 country code", code)
	}
	if canon := r.Canonicalize().String(); canon != code {
		return fmt.Sprintf("%q is not the ISO 3166-1 code; use %s", code, canon)
	}
	return ""
}

// NormalizeEmail is the form an address is stored under: trimmed and
// lowercased, as auth stores account addresses.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckEmail returns what is wrong with a normalized address, or "".
func CheckEmail(email string) string { return validate.Email(email) }

// Normalize returns a with its text trimmed and its country in capitals.
func (a Address) Normalize() Address {
	return Address{
		Name:       NormalizeText(a.Name),
		Line1:      NormalizeText(a.Line1),
		Line2:      NormalizeText(a.Line2),
		City:       NormalizeText(a.City),
		PostalCode: NormalizeText(a.PostalCode),
		Country:    strings.ToUpper(NormalizeText(a.Country)),
	}
}

// CheckAddress returns a field error for each fault of a normalized
// address, its fields named under prefix ("shipping_address." or "").
func CheckAddress(a Address, prefix string) []apierr.FieldError {
	var out []apierr.FieldError
	for _, f := range []struct {
		name, detail string
	}{
		{"name", CheckText(a.Name, true, MaxNameLen)},
		{"line1", CheckText(a.Line1, true, MaxAddressLineLen)},
		{"line2", CheckText(a.Line2, false, MaxAddressLineLen)},
		{"city", CheckText(a.City, true, MaxCityLen)},
		{"postal_code", CheckText(a.PostalCode, true, MaxPostalCodeLen)},
		{"country", CheckCountry(a.Country)},
	} {
		if f.detail != "" {
			out = append(out, apierr.FieldError{Field: prefix + f.name, Detail: f.detail})
		}
	}
	return out
}
