// Package openapi holds the API specifications, the source of truth of every
// HTTP interface of the shop: servers and clients are generated from them
// (make generate), and a service can serve its own spec from FS.
package openapi

import "embed"

// FS holds every spec of this folder, by file name ("shop.yaml", …).
//
//go:embed *.yaml
var FS embed.FS
