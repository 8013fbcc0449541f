package accounts

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mylittleshopping/shop/services/platform/validate"
)

// The limits the HTTP boundary and the configuration enforce.
const (
	MinPasswordLen    = 8
	MaxPasswordLen    = 128
	MaxEmailLen       = validate.MaxEmailLen
	MaxDisplayNameLen = 100
)

// NormalizeEmail is the form an address is stored, looked up and counted
// under: trimmed and lowercased. (Lowercasing the local part is not what
// RFC 5321 promises, but it is what every mailbox provider does, and it
// keeps Ada@x and ada@x from being two accounts.)
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckEmail returns what is wrong with a normalized address, or "".
func CheckEmail(email string) string { return validate.Email(email) }

// CheckPassword returns what is wrong with a new password, or "". Length is
// counted in characters, not bytes; nothing else is imposed (NIST 800-63B:
// length beats composition rules).
func CheckPassword(password string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case password == "":
		return "is required"
	case !utf8.ValidString(password):
		return "must be valid UTF-8"
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	}
	return ""
}

// NormalizeDisplayName trims the spaces around a display name.
func NormalizeDisplayName(s string) string { return strings.TrimSpace(s) }

// CheckDisplayName returns what is wrong with a normalized display name, or
// "".
func CheckDisplayName(name string) string { return validate.Line(name, true, MaxDisplayNameLen) }
