// Package validate checks request fields where JSON becomes domain values
// and collects every fault, so that a client fixes a whole form from one
// 400 that names each field. The checks return what is wrong as a short
// phrase ("must be at most 100 characters") or "" when the value is fine.
//
// It holds the one copy of each rule that more than one module checks:
// money and currencies (money.go), cards (card.go), idempotency keys,
// emails. The edge checks a request with these rules and each service
// behind it checks again with the same ones, so that a value the edge
// accepts is accepted everywhere behind it (the property tests built on
// validatetest prove it for each module).
package validate

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Errors collects the faults of one request.
type Errors struct {
	fields []apierr.FieldError
}

// Check records detail against field unless detail is "" (the check
// passed).
func (e *Errors) Check(field, detail string) {
	if detail != "" {
		e.fields = append(e.fields, apierr.FieldError{Field: field, Detail: detail})
	}
}

// Err is nil when every check passed, else an apierr.Invalid error listing
// every field at fault.
func (e *Errors) Err() error {
	if len(e.fields) == 0 {
		return nil
	}
	return apierr.InvalidFields(e.fields...)
}

// Text checks free text: valid UTF-8, at most max characters, no control
// characters (which break logs, emails and labels), present when required.
func Text(s string, required bool, max int) string {
	switch {
	case s == "" && required:
		return "is required"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "must not contain control characters"
		}
	}
	return ""
}

// Line is Text for one-line values (names, address lines): no newline or
// tab either.
func Line(s string, required bool, max int) string {
	if strings.ContainsAny(s, "\n\r\t") {
		return "must be a single line"
	}
	return Text(s, required, max)
}

// MaxEmailLen bounds an email address: RFC 5321's path limit.
const MaxEmailLen = 254

// Email checks a bare address (no display name), at most MaxEmailLen
// characters.
func Email(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > MaxEmailLen:
		return fmt.Sprintf("must be at most %d characters", MaxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "must be an email address like name@example.com"
	}
	if _, domain, _ := strings.Cut(s, "@"); !strings.Contains(domain, ".") {
		return "must have a domain with a dot"
	}
	return ""
}

// MaxKeyLen bounds an idempotency key. A checkout's key is the buyer's
// (the edge passes it to orders); the saga makes payment's keys from ids
// ("order-<uuid>", well under it).
const MaxKeyLen = 200

// IdempotencyKey checks an idempotency key: 1 to MaxKeyLen printable ASCII
// characters (it travels in a header and is logged).
func IdempotencyKey(k string) string {
	switch {
	case k == "":
		return "is required"
	case len(k) > MaxKeyLen:
		return fmt.Sprintf("must be at most %d characters", MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "must be printable ASCII"
		}
	}
	return ""
}

// Country checks an ISO 3166-1 alpha-2 code: two upper-case letters.
func Country(s string) string {
	if len(s) != 2 || strings.IndexFunc(s, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return "must be an ISO 3166-1 alpha-2 code of two upper-case letters, like FR"
	}
	return ""
}

// Range checks that n lies in [min, max].
func Range(n, min, max int64) string {
	if n < min || n > max {
		return fmt.Sprintf("must be between %d and %d", min, max)
	}
	return ""
}
