// Package sinkclient is the generated client of the mail sink (see
// openapi/mailsink.yaml): journeys and tests use it to read the emails the
// services sent, e.g. to follow a verification link.
package sinkclient

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/mailsink.yaml
