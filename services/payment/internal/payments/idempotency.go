package payments

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// Response is an answer to a request that carries an idempotency key. A
// final answer is stored with the key and replayed, status and body, to
// every later request with the key and the same content.
type Response struct {
	Status int
	Body   []byte
	// PaymentID is the payment the request is about, for the Location
	// header.
	PaymentID uuid.UUID
	// Replayed is true when the answer is the stored one of an earlier
	// request.
	Replayed bool
}

// The operations a key may have been used for.
const (
	opCreatePayment = "create_payment"
	opCreateRefund  = "create_refund"
)

// claimState is what claiming a key found.
type claimState int

const (
	// claimOwned: the request holds the key and does the work.
	claimOwned claimState = iota
	// claimReplay: the key has a stored answer.
	claimReplay
	// claimInFlight: another request holds the key.
	claimInFlight
	// claimMismatch: the key was used with another request.
	claimMismatch
)

type claim struct {
	state claimState
	// token names this request's hold on the key.
	token uuid.UUID
	// isNew is true when the key was claimed for the first time, false
	// when the request took over a key released without an answer.
	isNew     bool
	paymentID uuid.UUID
	refundID  *uuid.UUID
	response  *Response
}

// claimKey claims key in tx for a request of operation op with fingerprint
// fp, which creates (or refunds) paymentID (and refundID). The caller
// commits tx before calling the processor, so that the key is held, and
// visible to every duplicate, before anything is charged.
//
// A key that exists is replayed when it has an answer, in flight while
// its lease runs, and otherwise (released after an unknown outcome, or
// left by a request that died) taken over, so that a retry carries on with
// the same payment.
func (s *Service) claimKey(ctx context.Context, tx pgx.Tx, key, op string, fp []byte, paymentID uuid.UUID, refundID *uuid.UUID) (claim, error) {
	c := claim{token: uuid.New(), paymentID: paymentID, refundID: refundID}
	lease := s.cfg.IdempotencyLease.Microseconds()
	var got string
	err := tx.QueryRow(ctx, claimKeySQL, key, op, fp, paymentID, refundID, c.token, lease).Scan(&got)
	if err == nil {
		c.isNew = true
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return claim{}, constraints.Map(err)
	}
	k, err := getKeyForUpdate(ctx, tx, key)
	if err != nil {
		return claim{}, err
	}
	c.paymentID, c.refundID = k.paymentID, k.refundID
	switch {
	case k.operation != op || !bytes.Equal(k.fingerprint, fp):
		c.state = claimMismatch
	case k.response != nil:
		c.state, c.response = claimReplay, k.response
		c.response.PaymentID, c.response.Replayed = k.paymentID, true
	case k.inFlight:
		c.state = claimInFlight
	default:
		if _, err := exec(ctx, tx, "take over idempotency key", takeOverKeySQL, key, c.token, lease); err != nil {
			return claim{}, err
		}
	}
	return c, nil
}

// claimError is the error of a claim that the request does not own.
func claimError(c claim) error {
	switch c.state {
	case claimMismatch:
		return apierr.WithCode(apierr.Unprocessable, "idempotency-key-reused",
			errors.New("this Idempotency-Key was used with another request; send a new key for a new request"))
	case claimInFlight:
		return &apierr.Error{Kind: apierr.Conflict, Code: "idempotency-key-in-use", RetryAfter: time.Second,
			Err: errors.New("a request with this Idempotency-Key is in progress; retry after it ends")}
	}
	return nil
}

// keyed is the keyed hash that stands for a secret (a card number, a CVC)
// in a fingerprint.
func (s *Service) keyed(what, secret string) string {
	mac := hmac.New(sha256.New, s.fpKey)
	mac.Write([]byte(what + "\x00" + secret))
	return hex.EncodeToString(mac.Sum(nil))
}

// fingerprint is the SHA-256 of v's canonical JSON: v is a struct, whose
// fields encoding/json writes in a fixed order.
func fingerprint(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // structs of strings and numbers always marshal
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// paymentFingerprint is what makes two payment requests the same request.
func (s *Service) paymentFingerprint(in NewPayment) []byte {
	type card struct {
		NumberHash string `json:"number_hmac"`
		ExpMonth   int    `json:"exp_month"`
		ExpYear    int    `json:"exp_year"`
		CVCHash    string `json:"cvc_hmac"`
		Holder     string `json:"holder"`
	}
	return fingerprint(struct {
		Op       string    `json:"op"`
		OrderID  uuid.UUID `json:"order_id"`
		Amount   int64     `json:"amount"`
		Currency string    `json:"currency"`
		Card     card      `json:"card"`
	}{opCreatePayment, in.OrderID, in.Amount, in.Currency, card{
		NumberHash: s.keyed("number", in.Card.Number),
		ExpMonth:   in.Card.ExpMonth,
		ExpYear:    in.Card.ExpYear,
		CVCHash:    s.keyed("cvc", in.Card.CVC),
		Holder:     in.Card.Holder,
	}})
}

// refundFingerprint is what makes two refund requests the same request.
func refundFingerprint(paymentID uuid.UUID, amount int64) []byte {
	return fingerprint(struct {
		Op        string    `json:"op"`
		PaymentID uuid.UUID `json:"payment_id"`
		Amount    int64     `json:"amount"`
	}{opCreateRefund, paymentID, amount})
}

// afterCall is the context of the database work that records what the
// processor answered: detached from the caller's, so that a caller hanging
// up cannot lose an outcome already learnt.
func afterCall(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
