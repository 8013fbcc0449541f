package httpapi

import (
	"net/http"
	"time"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

func (a *API) Checkout(w http.ResponseWriter, r *http.Request, p CheckoutParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.checkout(w, r, p) })
}

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
	buyer, err := claims.AccountID()
	if err != nil {
		return err
	}
	in := checkout.Request{Key: p.IdempotencyKey, BuyerID: buyer, BuyerEmail: claims.Email}
	if req.AddressId != nil {
		if in.Address, err = a.savedAddress(ctx, *req.AddressId); err != nil {
			return err
		}
	} else {
		// checkRequest made sure one of them is there.
		in.Address = *req.ShippingAddress
	}
	// The public card and total are payment's and orders' types.
	in.Card, in.ExpectedTotal = req.Card, req.ExpectedTotal

	res, err := a.Saga.Checkout(ctx, in)
	if err != nil {
		return err
	}
	if !res.PaymentKnown {
		// A replay of an ended checkout: its payment tells how it ended.
		res.Payment, res.PaymentKnown = a.lookupPayment(ctx, res.Order.Id)
	}
	return a.answer(w, res, view(res.Order, res.Payment, res.PaymentKnown))
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
		errs.Check("expected_total.amount", validate.Total(t.Amount))
	}
	return errs.Err()
}

// checkKey checks a client's Idempotency-Key with the shared rule; orders,
// which the key is passed to, takes every key it takes.
func checkKey(k string) string {
	if k == "" {
		return "is required: a key of your choice that identifies this checkout"
	}
	return validate.IdempotencyKey(k)
}

// checkCard checks a card's form with the rules the payment service checks
// it with again, so that a mistyped card is a 400 before any order exists.
func checkCard(errs *validate.Errors, c CardInput, now time.Time) {
	card := validate.Card{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, CVC: c.Cvc}
	if c.Holder != nil {
		card.Holder = *c.Holder
	}
	validate.CheckCard(errs, "card.", card, now)
}
