package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

func (a *API) Checkout(w http.ResponseWriter, r *http.Request, p CheckoutParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.checkout(w, r, p) })
}

// maxKeyLen is orders' limit on a checkout key.
const maxKeyLen = 200

// checkout validates the request at the edge (so that a typo in a card
// number never creates an order), then runs the saga under its own budget:
// once started, a checkout runs to its end even if the client leaves.
func (a *API) checkout(w http.ResponseWriter, r *http.Request, p CheckoutParams) error {
	claims, err := authn.RequireVerified(r.Context())
	if err != nil {
		return err
	}
	if !claims.HasRole(authn.RoleBuyer) {
		return apierr.Errorf(apierr.Forbidden, "checkout is for buyer accounts")
	}
	var req CheckoutRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkRequest(p.IdempotencyKey, req, time.Now()); err != nil {
		return err
	}

	ctx, cancel := a.detached(r)
	defer cancel()
	buyer, err := uuid.Parse(claims.Subject)
	if err != nil {
		return apierr.Errorf(apierr.Unauthenticated, "the access token's subject is not an account id")
	}
	in := checkout.Request{Key: p.IdempotencyKey, BuyerID: buyer, BuyerEmail: claims.Email}
	if req.AddressId != nil {
		if in.Address, err = a.savedAddress(ctx, *req.AddressId); err != nil {
			return err
		}
	} else if in.Address, err = convert[orders.Address](req.ShippingAddress); err != nil {
		return err
	}
	if in.Card, err = convert[payment.CardInput](req.Card); err != nil {
		return err
	}
	if req.ExpectedTotal != nil {
		in.ExpectedTotal = &orders.Money{Amount: req.ExpectedTotal.Amount, Currency: req.ExpectedTotal.Currency}
	}

	res, err := a.Saga.Checkout(ctx, in)
	if err != nil {
		return err
	}
	if !res.PaymentKnown {
		// A replay of an ended checkout: its payment tells how it ended.
		res.Payment, res.PaymentKnown = a.lookupPayment(ctx, res.Order.Id)
	}
	v, err := a.view(ctx, res.Order, res.Payment, res.PaymentKnown)
	if err != nil {
		return err
	}
	return a.answer(w, res, v)
}

// answer writes a checkout's outcome: 201 confirmed, 202 still running,
// or the problem of how it ended.
func (a *API) answer(w http.ResponseWriter, res checkout.Result, v Order) error {
	if err := checkout.Outcome(res); err != nil {
		return err
	}
	status := checkout.Status(res)
	w.Header().Set("Location", "/v1/orders/"+res.Order.Id.String())
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if status == http.StatusAccepted {
		w.Header().Set("Retry-After", "2")
	}
	return httpx.WriteJSON(w, status, v)
}

// checkRequest checks a checkout request's key and body, naming every
// field at fault.
func checkRequest(key string, req CheckoutRequest, now time.Time) error {
	var errs validate.Errors
	errs.Check("Idempotency-Key", checkKey(key))
	switch {
	case req.ShippingAddress == nil && req.AddressId == nil:
		errs.Check("shipping_address", "is required (or address_id, one of your saved addresses)")
	case req.ShippingAddress != nil && req.AddressId != nil:
		errs.Check("address_id", "must not be sent with shipping_address; send one of them")
	}
	checkCard(&errs, req.Card, now)
	if t := req.ExpectedTotal; t != nil {
		errs.Check("expected_total.currency", validate.Currency(t.Currency))
		errs.Check("expected_total.amount", validate.Range(t.Amount, 0, 1<<62))
	}
	return errs.Err()
}

// checkKey checks a client's Idempotency-Key: printable ASCII, bounded.
func checkKey(k string) string {
	if k == "" {
		return "is required: a key of your choice that identifies this checkout"
	}
	if len(k) > maxKeyLen {
		return fmt.Sprintf("must be at most %d characters", maxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "must be printable ASCII"
		}
	}
	return ""
}

// checkCard checks a card's form as the payment service will (Luhn,
// expiry at the end of its month UTC, CVC), so that a mistyped card is a
// 400 before any order exists. The payment service checks again.
func checkCard(errs *validate.Errors, c CardInput, now time.Time) {
	switch {
	case len(c.Number) < 12 || len(c.Number) > 19 || !digits(c.Number):
		errs.Check("card.number", "must be 12 to 19 digits")
	case !luhn(c.Number):
		errs.Check("card.number", "is not a valid card number (check digit)")
	}
	if c.ExpMonth < 1 || c.ExpMonth > 12 {
		errs.Check("card.exp_month", "must be between 1 and 12")
	} else if c.ExpYear < 2000 || c.ExpYear > 2200 {
		errs.Check("card.exp_year", "must be a four-digit year")
	} else if end := time.Date(c.ExpYear, time.Month(c.ExpMonth)+1, 1, 0, 0, 0, 0, time.UTC); !now.Before(end) {
		errs.Check("card.exp_year", "the card has expired")
	}
	if len(c.Cvc) < 3 || len(c.Cvc) > 4 || !digits(c.Cvc) {
		errs.Check("card.cvc", "must be 3 or 4 digits")
	}
	if c.Holder != nil {
		errs.Check("card.holder", validate.Line(*c.Holder, false, 100))
	}
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func luhn(number string) bool {
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		d, _ := strconv.Atoi(number[i : i+1])
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
