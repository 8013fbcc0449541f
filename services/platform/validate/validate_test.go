package validate_test

import (
	"strings"
	"testing"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

func TestChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, got, want string
	}{
		{"text ok", validate.Text("Blue mug", true, 20), ""},
		{"text required", validate.Text("", true, 20), "is required"},
		{"text optional", validate.Text("", false, 20), ""},
		{"text too long", validate.Text(strings.Repeat("é", 21), true, 20), "must be at most 20 characters"},
		{"text invalid utf8", validate.Text("\xff", true, 20), "must be valid UTF-8"},
		{"text control", validate.Text("a\x00b", true, 20), "must not contain control characters"},
		{"text newline ok", validate.Text("a\nb", true, 20), ""},
		{"line newline", validate.Line("a\nb", true, 20), "must be a single line"},
		{"email ok", validate.Email("ann@example.com"), ""},
		{"email display name", validate.Email("Ann <ann@example.com>"), "must be an email address like name@example.com"},
		{"email no domain dot", validate.Email("ann@localhost"), "must have a domain with a dot"},
		{"email empty", validate.Email(""), "is required"},
		{"currency ok", validate.Currency("EUR"), ""},
		{"currency lower", validate.Currency("eur"), "must be an ISO 4217 code of three upper-case letters, like EUR"},
		{"country ok", validate.Country("FR"), ""},
		{"country long", validate.Country("FRA"), "must be an ISO 3166-1 alpha-2 code of two upper-case letters, like FR"},
		{"range ok", validate.Range(5, 1, 99), ""},
		{"range low", validate.Range(0, 1, 99), "must be between 1 and 99"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestErrorsCollectEveryField(t *testing.T) {
	t.Parallel()
	var v validate.Errors
	v.Check("name", validate.Text("", true, 10))
	v.Check("currency", validate.Currency("euro"))
	v.Check("quantity", validate.Range(3, 1, 99))
	err := v.Err()
	var e *apierr.Error
	if !apierr.Is(err, apierr.Invalid) || !asError(err, &e) || len(e.Fields) != 2 {
		t.Fatalf("got %v, want an invalid error naming name and currency", err)
	}
	if e.Fields[0].Field != "name" || e.Fields[1].Field != "currency" {
		t.Fatalf("got fields %+v, want name then currency", e.Fields)
	}
	var ok validate.Errors
	ok.Check("name", "")
	if ok.Err() != nil {
		t.Fatalf("got %v, want nil when every check passed", ok.Err())
	}
}

func asError(err error, target **apierr.Error) bool {
	e, ok := apierr.As(err)
	*target = e
	return ok
}
