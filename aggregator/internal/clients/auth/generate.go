// Package auth is the generated client of the auth service
// (openapi/auth.yaml). The aggregator builds it with the resilient
// HTTP client of package peer as its HttpRequestDoer.
package auth

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/auth.yaml
