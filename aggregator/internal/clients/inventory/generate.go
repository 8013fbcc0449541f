// Package inventory is the generated client of the inventory service
// (openapi/inventory.yaml). The aggregator builds it with the resilient
// HTTP client of package peer as its HttpRequestDoer.
package inventory

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/inventory.yaml
