// Package processor is the payment service's client of the card processor's
// HTTP API (openapi/sandbox-processor.yaml): the sandbox processor in the
// dev cluster and in tests. It implements payments.Processor and sorts
// every answer into the three cases the domain needs: done (a charge or a
// refund), refused (*payments.RejectedError: nothing was made), or unknown
// (payments.ErrOutcomeUnknown: it may have been made).
//
// Card numbers and CVCs go into request bodies only: never into a URL, an
// error or a log line.
package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mylittleshopping/shop/services/payment/internal/payments"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Config is the processor part of the service's configuration.
type Config struct {
	// URL is the processor API's root (the sandbox processor's address).
	URL    string `env:"PAYMENT_PROCESSOR_URL" required:"true"`
	APIKey string `env:"PAYMENT_PROCESSOR_API_KEY" required:"true" secret:"true"`
	// Timeout bounds one call. A charge that takes longer has an unknown
	// outcome: the payment stays pending and is reconciled.
	Timeout time.Duration `env:"PAYMENT_PROCESSOR_TIMEOUT" default:"10s"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("PAYMENT_PROCESSOR_URL %q must be an absolute http(s) URL", c.URL))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("PAYMENT_PROCESSOR_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// Client calls the processor.
type Client struct {
	base    string
	apiKey  string
	timeout time.Duration
	http    *http.Client
}

var _ payments.Processor = (*Client)(nil)

// New returns a client for cfg that calls through transport (nil: a clone
// of http.DefaultTransport; the mesh's inside the cluster).
func New(cfg Config, transport http.RoundTripper) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Client{
		base:    strings.TrimRight(cfg.URL, "/"),
		apiKey:  cfg.APIKey,
		timeout: cfg.Timeout,
		http:    &http.Client{Transport: httpx.PropagateRequestID{Base: transport}},
	}, nil
}

// The wire types of the processor's API.
type (
	wireCard struct {
		Number   string `json:"number"`
		ExpMonth int    `json:"exp_month"`
		ExpYear  int    `json:"exp_year"`
		CVC      string `json:"cvc"`
		Holder   string `json:"holder,omitempty"`
	}
	wireChargeRequest struct {
		Amount    int64    `json:"amount"`
		Currency  string   `json:"currency"`
		Card      wireCard `json:"card"`
		Reference string   `json:"reference,omitempty"`
	}
	wireCharge struct {
		ID             string `json:"id"`
		Status         string `json:"status"`
		FailureCode    string `json:"failure_code"`
		FailureMessage string `json:"failure_message"`
	}
	wireRefundRequest struct {
		ChargeID string `json:"charge_id"`
		Amount   int64  `json:"amount"`
	}
	wireRefund struct {
		ID string `json:"id"`
	}
	wireProblem struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
)

// Charge implements payments.Processor.
func (c *Client) Charge(ctx context.Context, key string, req payments.ChargeRequest) (payments.Charge, error) {
	body := wireChargeRequest{
		Amount: req.Amount, Currency: req.Currency, Reference: req.Reference,
		Card: wireCard{Number: req.Card.Number, ExpMonth: req.Card.ExpMonth, ExpYear: req.Card.ExpYear, CVC: req.Card.CVC, Holder: req.Card.Holder},
	}
	var ch wireCharge
	if err := c.post(ctx, "/v1/charges", key, body, &ch); err != nil {
		return payments.Charge{}, fmt.Errorf("charge %s: %w", key, err)
	}
	return toCharge(ch), nil
}

// FindCharge implements payments.Processor.
func (c *Client) FindCharge(ctx context.Context, key string) (payments.Charge, error) {
	var list struct {
		Items []wireCharge `json:"items"`
	}
	if err := c.get(ctx, "/v1/charges?idempotency_key="+url.QueryEscape(key), &list); err != nil {
		return payments.Charge{}, fmt.Errorf("find charge %s: %w", key, err)
	}
	if len(list.Items) == 0 {
		return payments.Charge{}, fmt.Errorf("find charge %s: %w", key, payments.ErrNotFound)
	}
	return toCharge(list.Items[0]), nil
}

// Refund implements payments.Processor.
func (c *Client) Refund(ctx context.Context, key string, req payments.RefundRequest) (payments.ProcessorRefund, error) {
	var r wireRefund
	if err := c.post(ctx, "/v1/refunds", key, wireRefundRequest{ChargeID: req.ChargeID, Amount: req.Amount}, &r); err != nil {
		return payments.ProcessorRefund{}, fmt.Errorf("refund %s: %w", key, err)
	}
	return payments.ProcessorRefund{ID: r.ID}, nil
}

// FindRefund implements payments.Processor.
func (c *Client) FindRefund(ctx context.Context, key string) (payments.ProcessorRefund, error) {
	var list struct {
		Items []wireRefund `json:"items"`
	}
	if err := c.get(ctx, "/v1/refunds?idempotency_key="+url.QueryEscape(key), &list); err != nil {
		return payments.ProcessorRefund{}, fmt.Errorf("find refund %s: %w", key, err)
	}
	if len(list.Items) == 0 {
		return payments.ProcessorRefund{}, fmt.Errorf("find refund %s: %w", key, payments.ErrNotFound)
	}
	return payments.ProcessorRefund{ID: list.Items[0].ID}, nil
}

func toCharge(ch wireCharge) payments.Charge {
	return payments.Charge{ID: ch.ID, Status: payments.ChargeStatus(ch.Status), FailureCode: ch.FailureCode, FailureMessage: ch.FailureMessage}
}

// post sends a request that makes something. Whatever does not prove that
// nothing was made is an unknown outcome: a transport error (the request
// may have arrived), a 5xx, a 409 for a key still being processed, an
// unreadable answer.
func (c *Client) post(ctx context.Context, path, key string, body, dst any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	status, answer, err := c.do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", payments.ErrOutcomeUnknown, err)
	}
	switch {
	case status == http.StatusCreated || status == http.StatusOK:
		if err := json.Unmarshal(answer, dst); err != nil {
			return fmt.Errorf("%w: unreadable answer: %v", payments.ErrOutcomeUnknown, err)
		}
		return nil
	case status == http.StatusBadRequest || status == http.StatusNotFound ||
		(status == http.StatusConflict && problemCode(answer) != "idempotency-key-in-use"):
		// The processor refused the request itself: invalid card, unknown
		// charge, refund too large. Nothing was made.
		p := problemOf(answer)
		return &payments.RejectedError{Code: problemCode(answer), Detail: p.Detail}
	default:
		// 401 (a wrong API key), 409 in use, 422 (a key reused with another
		// body: a bug), 429, 5xx: nothing proves that nothing was made.
		return fmt.Errorf("%w: status %d %s", payments.ErrOutcomeUnknown, status, problemCode(answer))
	}
}

// get reads from the processor.
func (c *Client) get(ctx context.Context, path string, dst any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	status, answer, err := c.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d %s: %s", status, problemCode(answer), problemOf(answer).Detail)
	}
	return json.Unmarshal(answer, dst)
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 1 << 20

func (c *Client) do(req *http.Request) (int, []byte, error) {
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, answer, nil
}

func problemOf(answer []byte) wireProblem {
	var p wireProblem
	_ = json.Unmarshal(answer, &p)
	return p
}

// problemCode is the last segment of a problem's type.
func problemCode(answer []byte) string {
	t := problemOf(answer).Type
	return t[strings.LastIndexByte(t, '/')+1:]
}
