// Package components holds the schemas every spec of the shop shares
// (openapi/components.yaml: Money, Currency, Problem, FieldError),
// generated once: every client package of the aggregator and its public
// API map that file here (import-mapping), so that inventory's, orders'
// and the public Money are one Go type.
package components

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/components.yaml
