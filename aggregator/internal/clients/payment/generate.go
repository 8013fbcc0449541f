// Package payment is the generated client of the payment service
// (openapi/payment.yaml). The aggregator builds it with the resilient
// HTTP client of package peer as its HttpRequestDoer.
package payment

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/payment.yaml
