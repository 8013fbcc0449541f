package payments

import (
	"context"
	"errors"
	"fmt"
)

// Processor is the card processor as the payments domain uses it: the
// sandbox processor in the dev cluster and in tests, a real PSP later (the
// second implementation this interface exists for). Every call that makes
// something carries an idempotency key: the processor makes at most one
// charge or refund per key, and answers what a key made.
type Processor interface {
	// Charge charges the card, or returns what key already made. An error
	// wrapping ErrOutcomeUnknown means the charge may or may not have been
	// made; a *RejectedError means it was not.
	Charge(ctx context.Context, key string, req ChargeRequest) (Charge, error)
	// FindCharge returns the charge key made, or ErrNotFound.
	FindCharge(ctx context.Context, key string) (Charge, error)
	// Refund refunds part of a charge, or returns what key already made;
	// errors as Charge's.
	Refund(ctx context.Context, key string, req RefundRequest) (ProcessorRefund, error)
	// FindRefund returns the refund key made, or ErrNotFound.
	FindRefund(ctx context.Context, key string) (ProcessorRefund, error)
}

// ChargeRequest is a charge to make.
type ChargeRequest struct {
	Amount   int64
	Currency string
	Card     Card
	// Reference is shown on the charge at the processor: the order id.
	Reference string
}

// ChargeStatus is where a charge stands at the processor.
type ChargeStatus string

// The statuses of a charge; pending while the processor is still at work.
const (
	ChargePending   ChargeStatus = "pending"
	ChargeSucceeded ChargeStatus = "succeeded"
	ChargeFailed    ChargeStatus = "failed"
)

// Charge is the processor's charge.
type Charge struct {
	ID     string
	Status ChargeStatus
	// FailureCode is the processor's reason for a failed charge:
	// card_declined, insufficient_funds, processing_error.
	FailureCode    string
	FailureMessage string
}

// RefundRequest is a refund to make.
type RefundRequest struct {
	ChargeID string
	Amount   int64
}

// ProcessorRefund is a refund the processor made.
type ProcessorRefund struct {
	ID string
}

// ErrOutcomeUnknown reports a call whose effect is unknown: it timed out,
// the connection was cut after sending, the processor failed or was busy
// with the same key. The payment stays pending until the reconciler knows.
var ErrOutcomeUnknown = errors.New("processor outcome unknown")

// ErrNotFound reports that the processor has no record of a key.
var ErrNotFound = errors.New("processor has no record of this key")

// RejectedError is the processor refusing a request: nothing was made.
type RejectedError struct {
	Code   string
	Detail string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("processor rejected the request (%s): %s", e.Code, e.Detail)
}

// failureOf maps a processor's failure code to ours.
func failureOf(processorCode string) string {
	switch processorCode {
	case "insufficient_funds":
		return CodeInsufficientFunds
	case "processing_error":
		return CodeProcessingError
	default:
		return CodeCardDeclined
	}
}

// failureMessages are the messages of our failure codes.
var failureMessages = map[string]string{
	CodeCardDeclined:      "the card was declined",
	CodeInsufficientFunds: "the card has insufficient funds",
	CodeProcessingError:   "the processor could not process the card; the card was not charged",
	CodeNotProcessed:      "the processor never received the charge; the card was not charged",
}
