package sandbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// The test cards and what they do, as a processor's test mode documents
// them. Any other number that passes the Luhn check succeeds.
const (
	CardSuccess           = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessingError   = "4000000000000119"
	// CardSlow succeeds, but its answer comes only after
	// SANDBOX_SLOW_DELAY: the charge is made at once (and reads as pending
	// until then), so that callers time out on a charge that was made.
	CardSlow = "4000000000000077"
	// CardRefundRefused is charged, but every refund of its charges is
	// refused (409 refund-declined), as a processor refuses a refund to
	// a closed card account: what a shop must survive without looping.
	CardRefundRefused = "4000000000005126"
)

// The failure codes of a failed charge.
const (
	FailureCardDeclined      = "card_declined"
	FailureInsufficientFunds = "insufficient_funds"
	FailureProcessingError   = "processing_error"
)

// outcome is what a card number decides.
type outcome struct {
	failureCode    string
	failureMessage string
	slow           bool
	refuseRefunds  bool
}

func outcomeOf(number string) outcome {
	switch number {
	case CardDeclined:
		return outcome{failureCode: FailureCardDeclined, failureMessage: "Your card was declined."}
	case CardInsufficientFunds:
		return outcome{failureCode: FailureInsufficientFunds, failureMessage: "Your card has insufficient funds."}
	case CardProcessingError:
		return outcome{failureCode: FailureProcessingError, failureMessage: "An error occurred while processing your card. Try again in a little bit."}
	case CardSlow:
		return outcome{slow: true}
	case CardRefundRefused:
		return outcome{refuseRefunds: true}
	}
	return outcome{}
}

// validateCard checks a card as the processor does, naming each field at
// fault and never repeating the number or the CVC.
func validateCard(c Card, now time.Time) error {
	var fields []apierr.FieldError
	add := func(field, detail string) {
		fields = append(fields, apierr.FieldError{Field: "card." + field, Detail: detail})
	}
	switch {
	case !digits(c.Number) || len(c.Number) < 12 || len(c.Number) > 19:
		add("number", "must be 12 to 19 digits")
	case !luhn(c.Number):
		add("number", "is incorrect (Luhn check failed)")
	}
	now = now.UTC()
	switch {
	case c.ExpMonth < 1 || c.ExpMonth > 12:
		add("exp_month", "must be between 1 and 12")
	case c.ExpYear < now.Year() || (c.ExpYear == now.Year() && c.ExpMonth < int(now.Month())):
		add("exp_year", "the card has expired")
	}
	if !digits(c.CVC) || len(c.CVC) < 3 || len(c.CVC) > 4 {
		add("cvc", "must be 3 or 4 digits")
	}
	if len([]rune(c.Holder)) > 100 {
		add("holder", "must be at most 100 characters")
	}
	if len(fields) == 0 {
		return nil
	}
	return &apierr.Error{Kind: apierr.Invalid, Code: "invalid-card", Fields: fields,
		Err: fmt.Errorf("the card is invalid: %s", describe(fields))}
}

func describe(fields []apierr.FieldError) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + " " + f.Detail
	}
	return strings.Join(parts, "; ")
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// luhn reports whether the digits pass the Luhn checksum. The sandbox has
// its own copy: it stands for a processor outside the system, which shares
// no code with the payment service.
func luhn(number string) bool {
	sum, double := 0, false
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

func brand(number string) string {
	switch {
	case strings.HasPrefix(number, "4"):
		return "visa"
	case strings.HasPrefix(number, "5") || strings.HasPrefix(number, "2"):
		return "mastercard"
	case strings.HasPrefix(number, "34") || strings.HasPrefix(number, "37"):
		return "amex"
	case strings.HasPrefix(number, "6"):
		return "discover"
	}
	return "unknown"
}
