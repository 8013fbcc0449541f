// Package orders is the generated client of the orders service
// (openapi/orders.yaml). The aggregator builds it with the resilient
// HTTP client of package peer as its HttpRequestDoer.
package orders

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/orders.yaml
