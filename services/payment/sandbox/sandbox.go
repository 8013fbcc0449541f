// Package sandbox is the sandbox card processor: a separate HTTP server of
// ours, run by the dev cluster and the tests, that behaves like a real
// processor's test mode (Stripe-like semantics on a simple JSON API of our
// own, openapi/sandbox-processor.yaml). It validates cards (Luhn, expiry,
// CVC), lets test card numbers decide the outcome (success, declined,
// insufficient funds, processing error, a slow card whose answer comes
// after the caller gave up, and a card whose refunds are refused), honours an Idempotency-Key per request, and
// tells tests how many charges it really made per key.
//
// It is, with the mail sink, one of the fakes of the system: it stands for
// the card processor, outside our infrastructure, and the code under test
// is the payment service's production client pointed at it.
//
// Card numbers and CVCs are neither logged nor kept: a charge keeps the
// brand and last 4 digits; an idempotency record keeps a SHA-256 of the
// request, in memory.
package sandbox

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// Config is the sandbox's part of its process's configuration.
type Config struct {
	// APIKey, when set, is the only key accepted; when empty any non-empty
	// bearer key is, so services keep whatever key they were given.
	APIKey string `env:"SANDBOX_API_KEY" secret:"true"`
	// SlowDelay is how long the slow test card's answer takes.
	SlowDelay time.Duration `env:"SANDBOX_SLOW_DELAY" default:"10s"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.SlowDelay <= 0 {
		return errors.New("SANDBOX_SLOW_DELAY must be positive")
	}
	return nil
}

// The wire types of the API.
type (
	// Card is a card in a charge request.
	Card struct {
		Number   string `json:"number"`
		ExpMonth int    `json:"exp_month"`
		ExpYear  int    `json:"exp_year"`
		CVC      string `json:"cvc"`
		Holder   string `json:"holder,omitempty"`
	}
	// ChargeRequest is the body of POST /v1/charges.
	ChargeRequest struct {
		Amount    int64  `json:"amount"`
		Currency  string `json:"currency"`
		Card      Card   `json:"card"`
		Reference string `json:"reference,omitempty"`
	}
	// Charge is a charge as the API shows it.
	Charge struct {
		ID             string    `json:"id"`
		Amount         int64     `json:"amount"`
		Currency       string    `json:"currency"`
		Reference      string    `json:"reference,omitempty"`
		Status         string    `json:"status"`
		FailureCode    string    `json:"failure_code,omitempty"`
		FailureMessage string    `json:"failure_message,omitempty"`
		AmountRefunded int64     `json:"amount_refunded"`
		CardBrand      string    `json:"card_brand"`
		CardLast4      string    `json:"card_last4"`
		CreatedAt      time.Time `json:"created_at"`
	}
	// RefundRequest is the body of POST /v1/refunds.
	RefundRequest struct {
		ChargeID string `json:"charge_id"`
		Amount   int64  `json:"amount"`
	}
	// Refund is a refund as the API shows it.
	Refund struct {
		ID        string    `json:"id"`
		ChargeID  string    `json:"charge_id"`
		Amount    int64     `json:"amount"`
		Status    string    `json:"status"`
		CreatedAt time.Time `json:"created_at"`
	}
	// Counts is what the sandbox really did: GET /v1/test/charge-counts.
	Counts struct {
		Charges                 int              `json:"charges"`
		ChargesByIdempotencyKey map[string]int   `json:"charges_by_idempotency_key"`
		ChargesByReference      map[string]int   `json:"charges_by_reference"`
		Refunds                 int              `json:"refunds"`
		RefundsByIdempotencyKey map[string]int   `json:"refunds_by_idempotency_key"`
		RefundedByCharge        map[string]int64 `json:"refunded_by_charge"`
	}
)

// charge is a charge made; its answer is due at readyAt (later than its
// creation for the slow card), and it reads as pending until then.
type charge struct {
	Charge
	final   string
	readyAt time.Time
	// refuseRefunds: the card's refunds are refused (CardRefundRefused).
	refuseRefunds bool
}

func (c *charge) view(now time.Time) Charge {
	v := c.Charge
	v.Status = c.final
	if now.Before(c.readyAt) {
		v.Status, v.FailureCode, v.FailureMessage = "pending", "", ""
	}
	return v
}

// keyed is an idempotency record: the request's fingerprint and what it
// made.
type keyed struct {
	fingerprint [32]byte
	id          string
}

// Processor is the sandbox, an http.Handler.
type Processor struct {
	cfg    Config
	log    hclog.Logger
	router *mux.Router
	now    func() time.Time

	mu         sync.Mutex
	charges    map[string]*charge
	refunds    map[string]*Refund
	chargeKeys map[string]keyed
	refundKeys map[string]keyed
	counts     Counts
}

// New returns a sandbox with nothing charged.
func New(cfg Config, log hclog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	p := &Processor{
		cfg: cfg, log: log.Named("sandbox"), now: time.Now,
		charges: map[string]*charge{}, refunds: map[string]*Refund{},
		chargeKeys: map[string]keyed{}, refundKeys: map[string]keyed{},
		counts: Counts{
			ChargesByIdempotencyKey: map[string]int{}, ChargesByReference: map[string]int{},
			RefundsByIdempotencyKey: map[string]int{}, RefundedByCharge: map[string]int64{},
		},
	}
	r := httpx.NewRouter()
	r.Handle("/v1/charges", p.authenticated(p.createCharge)).Methods(http.MethodPost)
	r.Handle("/v1/charges", p.authenticated(p.findCharges)).Methods(http.MethodGet)
	r.Handle("/v1/charges/{id}", p.authenticated(p.getCharge)).Methods(http.MethodGet)
	r.Handle("/v1/refunds", p.authenticated(p.createRefund)).Methods(http.MethodPost)
	r.Handle("/v1/refunds", p.authenticated(p.findRefunds)).Methods(http.MethodGet)
	r.Handle("/v1/test/charge-counts", httpx.Handle(p.getCounts)).Methods(http.MethodGet)
	p.router = r
	return p, nil
}

// ServeHTTP implements http.Handler.
func (p *Processor) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.router.ServeHTTP(w, r) }

// Counts returns what the sandbox really did.
func (p *Processor) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.ChargesByIdempotencyKey = clone(c.ChargesByIdempotencyKey)
	c.ChargesByReference = clone(c.ChargesByReference)
	c.RefundsByIdempotencyKey = clone(c.RefundsByIdempotencyKey)
	c.RefundedByCharge = clone(c.RefundedByCharge)
	return c
}

func clone[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// authenticated checks the bearer API key, then runs h.
func (p *Processor) authenticated(h httpx.HandlerFunc) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" || (p.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(p.cfg.APIKey)) != 1) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox-processor"`)
			return apierr.Errorf(apierr.Unauthenticated, "send the API key as Authorization: Bearer <key>")
		}
		return h(w, r)
	})
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return "", apierr.InvalidFields(apierr.FieldError{Field: "Idempotency-Key", Detail: "must be at most 255 characters"})
	}
	return key, nil
}

// replay checks a request against the record of its key: nil, false when
// the key is new (or absent).
func replay(records map[string]keyed, key string, fp [32]byte) (id string, found bool, err error) {
	if key == "" {
		return "", false, nil
	}
	rec, ok := records[key]
	if !ok {
		return "", false, nil
	}
	if rec.fingerprint != fp {
		return "", false, apierr.WithCode(apierr.Unprocessable, "idempotency-key-reused",
			errors.New("keys for idempotent requests can only be used with the same parameters they were first used with"))
	}
	return rec.id, true, nil
}

func (p *Processor) createCharge(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req ChargeRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	now := p.now()
	var fields []apierr.FieldError
	if req.Amount < 1 {
		fields = append(fields, apierr.FieldError{Field: "amount", Detail: "must be a positive integer (minor units)"})
	}
	if len(req.Currency) != 3 || strings.ToUpper(req.Currency) != req.Currency {
		fields = append(fields, apierr.FieldError{Field: "currency", Detail: "must be an ISO 4217 code in upper case"})
	}
	if len(req.Reference) > 255 {
		fields = append(fields, apierr.FieldError{Field: "reference", Detail: "must be at most 255 characters"})
	}
	if err := validateCard(req.Card, now); err != nil {
		var e *apierr.Error
		errors.As(err, &e)
		fields = append(fields, e.Fields...)
	}
	if len(fields) > 0 {
		return &apierr.Error{Kind: apierr.Invalid, Code: "invalid-card", Fields: fields, Err: errors.New(describe(fields))}
	}
	fp := fingerprintOf(req)

	p.mu.Lock()
	id, found, err := replay(p.chargeKeys, key, fp)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	if found {
		c := p.charges[id]
		if now.Before(c.readyAt) {
			p.mu.Unlock()
			return &apierr.Error{Kind: apierr.Conflict, Code: "idempotency-key-in-use", RetryAfter: time.Second,
				Err: errors.New("a request with this Idempotency-Key is still being processed")}
		}
		v := c.view(now)
		p.mu.Unlock()
		w.Header().Set("Idempotent-Replayed", "true")
		return httpx.WriteJSON(w, http.StatusCreated, v)
	}
	c := p.newCharge(req, key, now)
	v := c.view(c.readyAt)
	p.mu.Unlock()
	logging.Of(r.Context(), p.log).Info("charge made", "charge_id", c.ID, "idempotency_key", key, "reference", c.Reference,
		"amount", c.Amount, "currency", c.Currency, "card_brand", c.CardBrand, "card_last4", c.CardLast4,
		"status", c.final, "failure_code", c.FailureCode)

	if wait := c.readyAt.Sub(now); wait > 0 {
		// The slow card: the charge is made; only its answer is late.
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			logging.Of(r.Context(), p.log).Info("caller gave up waiting for a slow charge; it was made all the same", "charge_id", c.ID)
			return nil
		}
	}
	return httpx.WriteJSON(w, http.StatusCreated, v)
}

// newCharge makes a charge; p.mu is held.
func (p *Processor) newCharge(req ChargeRequest, key string, now time.Time) *charge {
	o := outcomeOf(req.Card.Number)
	c := &charge{
		Charge: Charge{
			ID: "ch_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:24], Amount: req.Amount, Currency: req.Currency,
			Reference: req.Reference, FailureCode: o.failureCode, FailureMessage: o.failureMessage,
			CardBrand: brand(req.Card.Number), CardLast4: req.Card.Number[len(req.Card.Number)-4:], CreatedAt: now.UTC(),
		},
		final:         "succeeded",
		readyAt:       now,
		refuseRefunds: o.refuseRefunds,
	}
	if o.failureCode != "" {
		c.final = "failed"
	}
	if o.slow {
		c.readyAt = now.Add(p.cfg.SlowDelay)
	}
	p.charges[c.ID] = c
	if key != "" {
		p.chargeKeys[key] = keyed{fingerprint: fingerprintOf(req), id: c.ID}
	}
	p.counts.Charges++
	p.counts.ChargesByIdempotencyKey[key]++
	p.counts.ChargesByReference[req.Reference]++
	return c
}

func fingerprintOf(v any) [32]byte {
	b, _ := json.Marshal(v)
	return sha256.Sum256(b)
}

func (p *Processor) findCharges(w http.ResponseWriter, r *http.Request) error {
	key, err := queryKey(r)
	if err != nil {
		return err
	}
	p.mu.Lock()
	items := []Charge{}
	if rec, ok := p.chargeKeys[key]; ok {
		items = append(items, p.charges[rec.id].view(p.now()))
	}
	p.mu.Unlock()
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (p *Processor) getCharge(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	p.mu.Lock()
	c, ok := p.charges[id]
	var v Charge
	if ok {
		v = c.view(p.now())
	}
	p.mu.Unlock()
	if !ok {
		return apierr.Errorf(apierr.NotFound, "no charge %q", id)
	}
	return httpx.WriteJSON(w, http.StatusOK, v)
}

// queryKey reads the idempotency_key parameter of the find endpoints.
func queryKey(r *http.Request) (string, error) {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" || len(key) > 255 {
		return "", apierr.InvalidFields(apierr.FieldError{Field: "idempotency_key", Detail: "is required, at most 255 characters"})
	}
	return key, nil
}

func (p *Processor) createRefund(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req RefundRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var fields []apierr.FieldError
	if req.ChargeID == "" {
		fields = append(fields, apierr.FieldError{Field: "charge_id", Detail: "is required"})
	}
	if req.Amount < 1 {
		fields = append(fields, apierr.FieldError{Field: "amount", Detail: "must be a positive integer (minor units)"})
	}
	if len(fields) > 0 {
		return apierr.InvalidFields(fields...)
	}
	fp := fingerprintOf(req)
	now := p.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	id, found, err := replay(p.refundKeys, key, fp)
	if err != nil {
		return err
	}
	if found {
		w.Header().Set("Idempotent-Replayed", "true")
		return httpx.WriteJSON(w, http.StatusCreated, p.refunds[id])
	}
	c, ok := p.charges[req.ChargeID]
	switch {
	case !ok:
		return apierr.Errorf(apierr.NotFound, "no charge %q", req.ChargeID)
	case c.view(now).Status != "succeeded":
		return apierr.WithCode(apierr.Conflict, "charge-not-refundable",
			fmt.Errorf("charge %s is %s: only a succeeded charge can be refunded", c.ID, c.view(now).Status))
	case c.refuseRefunds:
		logging.Of(r.Context(), p.log).Info("refund refused (test card)", "charge_id", c.ID, "idempotency_key", key)
		return apierr.WithCode(apierr.Conflict, "refund-declined",
			fmt.Errorf("charge %s cannot be refunded: the card account refuses refunds", c.ID))
	case req.Amount > c.Amount-c.AmountRefunded:
		return apierr.WithCode(apierr.Conflict, "amount-too-large",
			fmt.Errorf("refund of %d is larger than what is left of charge %s (%d)", req.Amount, c.ID, c.Amount-c.AmountRefunded))
	}
	ref := &Refund{ID: "re_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:24], ChargeID: c.ID, Amount: req.Amount, Status: "succeeded", CreatedAt: now.UTC()}
	c.AmountRefunded += req.Amount
	p.refunds[ref.ID] = ref
	if key != "" {
		p.refundKeys[key] = keyed{fingerprint: fp, id: ref.ID}
	}
	p.counts.Refunds++
	p.counts.RefundsByIdempotencyKey[key]++
	p.counts.RefundedByCharge[c.ID] += req.Amount
	logging.Of(r.Context(), p.log).Info("refund made", "refund_id", ref.ID, "charge_id", c.ID, "idempotency_key", key, "amount", req.Amount)
	return httpx.WriteJSON(w, http.StatusCreated, ref)
}

func (p *Processor) findRefunds(w http.ResponseWriter, r *http.Request) error {
	key, err := queryKey(r)
	if err != nil {
		return err
	}
	p.mu.Lock()
	items := []Refund{}
	if rec, ok := p.refundKeys[key]; ok {
		items = append(items, *p.refunds[rec.id])
	}
	p.mu.Unlock()
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (p *Processor) getCounts(w http.ResponseWriter, r *http.Request) error {
	return httpx.WriteJSON(w, http.StatusOK, p.Counts())
}
