// Package httpapi is the payment service's HTTP boundary: the routes and
// types generated from openapi/payment.yaml (api.gen.go), and the handlers
// that decode and validate requests into the payments domain's values and
// render its answers. Each generated ServerInterface method is a one-line
// adapter onto a method that returns an error; httpx turns errors into
// problem+json.
//
// The answers of the POSTs are rendered here but stored by the domain with
// their idempotency key, so that a replay is byte for byte what the first
// request got.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/mylittleshopping/shop/services/payment/internal/payments"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// API implements the generated ServerInterface.
type API struct {
	payments *payments.Service
	now      func() time.Time
}

var _ ServerInterface = (*API)(nil)

// New returns the service's routes. No route needs a user token: see the
// trust model in openapi/payment.yaml.
func New(svc *payments.Service) http.Handler {
	r := httpx.NewRouter()
	return HandlerWithOptions(&API{payments: svc, now: time.Now}, GorillaServerOptions{
		BaseRouter:       r,
		ErrorHandlerFunc: httpx.ParamError,
	})
}

// The ServerInterface adapters: each runs the error-returning method that
// does the work.

func (a *API) CreatePayment(w http.ResponseWriter, r *http.Request, p CreatePaymentParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.createPayment(w, r, p.IdempotencyKey) })
}

func (a *API) ListPayments(w http.ResponseWriter, r *http.Request, p ListPaymentsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listPayments(w, r, p) })
}

func (a *API) GetPayment(w http.ResponseWriter, r *http.Request, id PaymentID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getPayment(w, r, id) })
}

func (a *API) CreateRefund(w http.ResponseWriter, r *http.Request, id PaymentID, p CreateRefundParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.createRefund(w, r, id, p.IdempotencyKey) })
}

func (a *API) createPayment(w http.ResponseWriter, r *http.Request, key string) error {
	var req CreatePaymentRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	in, err := newPayment(key, req, a.now())
	if err != nil {
		return err
	}
	resp, err := a.payments.Create(r.Context(), key, in, func(p payments.Payment) payments.Response {
		return renderPayment(r, p)
	})
	if err != nil {
		return err
	}
	return writeResponse(w, resp)
}

// newPayment checks a payment request at now and returns it as the
// domain's value, naming every field at fault.
func newPayment(key string, req CreatePaymentRequest, now time.Time) (payments.NewPayment, error) {
	var errs validate.Errors
	errs.Check("Idempotency-Key", validate.IdempotencyKey(key))
	in := payments.NewPayment{
		OrderID:  req.OrderId,
		Amount:   req.Amount,
		Currency: req.Currency,
		Card: payments.Card{
			Number: req.Card.Number, ExpMonth: req.Card.ExpMonth, ExpYear: req.Card.ExpYear, CVC: req.Card.Cvc,
		},
	}
	if req.Card.Holder != nil {
		in.Card.Holder = *req.Card.Holder
	}
	if in.OrderID == (openapi_types.UUID{}) {
		errs.Check("order_id", "is required")
	}
	errs.Check("amount", validate.Amount(in.Amount))
	errs.Check("currency", validate.Currency(in.Currency))
	validate.CheckCard(&errs, "card.", validate.Card{
		Number: in.Card.Number, ExpMonth: in.Card.ExpMonth, ExpYear: in.Card.ExpYear, CVC: in.Card.CVC, Holder: in.Card.Holder,
	}, now)
	return in, errs.Err()
}

func (a *API) createRefund(w http.ResponseWriter, r *http.Request, id PaymentID, key string) error {
	var req CreateRefundRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkRefund(key, req); err != nil {
		return err
	}
	resp, err := a.payments.Refund(r.Context(), key, id, req.Amount, func(rf payments.Refund) payments.Response {
		return renderRefund(r, rf)
	})
	if err != nil {
		return err
	}
	return writeResponse(w, resp)
}

// checkRefund checks a refund request, naming every field at fault.
func checkRefund(key string, req CreateRefundRequest) error {
	var errs validate.Errors
	errs.Check("Idempotency-Key", validate.IdempotencyKey(key))
	errs.Check("amount", validate.Amount(req.Amount))
	return errs.Err()
}

func (a *API) getPayment(w http.ResponseWriter, r *http.Request, id PaymentID) error {
	p, err := a.payments.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toPayment(p))
}

// listPayments answers the payments of some orders (order_id), or a page
// of the walk of those created since a time (since); exactly one of the
// two.
func (a *API) listPayments(w http.ResponseWriter, r *http.Request, p ListPaymentsParams) error {
	var errs validate.Errors
	switch {
	case p.OrderId != nil && p.Since != nil:
		errs.Check("since", "cannot be combined with order_id")
	case p.OrderId == nil && p.Since == nil:
		errs.Check("order_id", "is required, or since")
	case p.OrderId != nil:
		if p.Limit != nil || p.PageToken != nil {
			errs.Check("order_id", "is not paged: limit and page_token go with since")
		}
		if n := len(*p.OrderId); n == 0 || n > payments.MaxOrdersPerLookup {
			errs.Check("order_id", fmt.Sprintf("must name 1 to %d orders", payments.MaxOrdersPerLookup))
		}
		if err := errs.Err(); err != nil {
			return err
		}
		ps, err := a.payments.ByOrders(r.Context(), *p.OrderId)
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, PaymentList{Items: mapPayments(ps)})
	}
	limit := defaultLimit
	if p.Limit != nil {
		limit = *p.Limit
		if limit < 1 || limit > maxLimit {
			errs.Check("limit", fmt.Sprintf("must be between 1 and %d", maxLimit))
		}
	}
	var after *payments.Cursor
	if p.PageToken != nil && *p.PageToken != "" {
		at, id, err := httpx.DecodePageToken(*p.PageToken)
		if err != nil {
			errs.Check("page_token", "is not a next_page_token of this list")
		}
		after = &payments.Cursor{At: at, ID: id}
	}
	if err := errs.Err(); err != nil {
		return err
	}
	ps, next, err := a.payments.Since(r.Context(), *p.Since, after, limit)
	if err != nil {
		return err
	}
	list := PaymentList{Items: mapPayments(ps)}
	if next != nil {
		token := httpx.EncodePageToken(next.At, next.ID)
		list.NextPageToken = &token
	}
	return httpx.WriteJSON(w, http.StatusOK, list)
}

// Pagination limits of the walk.
const (
	defaultLimit = 20
	maxLimit     = 100
)

func mapPayments(ps []payments.Payment) []Payment {
	out := make([]Payment, len(ps))
	for i, p := range ps {
		out[i] = toPayment(p)
	}
	return out
}

// retryAfter is what a 202 asks the caller to wait before polling or
// retrying.
const retryAfter = 2 * time.Second

// renderPayment is the answer a payment deserves: 201 once charged (or
// refunded since), 402 problem+json when the card was refused, 202 while
// the outcome is unknown.
func renderPayment(r *http.Request, p payments.Payment) payments.Response {
	switch p.Status {
	case payments.Failed:
		return problem(r, http.StatusPaymentRequired, p.FailureCode,
			fmt.Sprintf("payment %s of order %s failed: %s", p.ID, p.OrderID, p.FailureMessage))
	case payments.Pending:
		return jsonResponse(http.StatusAccepted, toPayment(p))
	}
	return jsonResponse(http.StatusCreated, toPayment(p))
}

// renderRefund is the answer a refund deserves: 201 once made, 409
// problem+json when the processor refused it, 202 while unknown.
func renderRefund(r *http.Request, rf payments.Refund) payments.Response {
	switch rf.Status {
	case payments.RefundFailed:
		return problem(r, http.StatusConflict, rf.FailureCode,
			fmt.Sprintf("refund %s of payment %s failed: %s", rf.ID, rf.PaymentID, rf.FailureMessage))
	case payments.RefundPending:
		return jsonResponse(http.StatusAccepted, toRefund(rf))
	}
	return jsonResponse(http.StatusCreated, toRefund(rf))
}

func jsonResponse(status int, v any) payments.Response {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // generated types of strings, numbers and times
	}
	return payments.Response{Status: status, Body: body}
}

func problem(r *http.Request, status int, code, detail string) payments.Response {
	return jsonResponse(status, httpx.Problem{
		Type:     httpx.ProblemTypeBase + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: httpx.RequestID(r.Context()),
	})
}

// writeResponse writes a domain answer, stored or fresh.
func writeResponse(w http.ResponseWriter, resp payments.Response) error {
	h := w.Header()
	if resp.Status >= 400 {
		h.Set("Content-Type", httpx.ProblemContentType)
		h.Set("X-Content-Type-Options", "nosniff")
	} else {
		h.Set("Content-Type", "application/json")
	}
	if resp.PaymentID != (openapi_types.UUID{}) {
		h.Set("Location", "/internal/payments/"+resp.PaymentID.String())
	}
	if resp.Status == http.StatusAccepted {
		h.Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	if resp.Replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)+1))
	w.WriteHeader(resp.Status)
	_, err := w.Write(append(resp.Body, '\n'))
	return err
}

func toPayment(p payments.Payment) Payment {
	out := Payment{
		Id:             p.ID,
		OrderId:        p.OrderID,
		Amount:         p.Amount,
		Currency:       p.Currency,
		Status:         PaymentStatus(p.Status),
		AmountRefunded: p.AmountRefunded,
		Card:           Card{Brand: CardBrand(p.Card.Brand), Last4: p.Card.Last4, ExpMonth: p.Card.ExpMonth, ExpYear: p.Card.ExpYear},
		Refunds:        make([]Refund, len(p.Refunds)),
		CreatedAt:      p.CreatedAt.UTC(),
		UpdatedAt:      p.UpdatedAt.UTC(),
	}
	out.ProcessorReference = optional(p.ProcessorReference)
	if p.FailureCode != "" {
		code := PaymentFailureCode(p.FailureCode)
		out.FailureCode = &code
	}
	out.FailureMessage = optional(p.FailureMessage)
	for i, rf := range p.Refunds {
		out.Refunds[i] = toRefund(rf)
	}
	return out
}

func toRefund(rf payments.Refund) Refund {
	return Refund{
		Id:                 rf.ID,
		PaymentId:          rf.PaymentID,
		Amount:             rf.Amount,
		Currency:           rf.Currency,
		Status:             RefundStatus(rf.Status),
		ProcessorReference: optional(rf.ProcessorReference),
		FailureCode:        optional(rf.FailureCode),
		FailureMessage:     optional(rf.FailureMessage),
		CreatedAt:          rf.CreatedAt.UTC(),
		UpdatedAt:          rf.UpdatedAt.UTC(),
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
