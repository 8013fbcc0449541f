// Package bench holds the system benchmark of the shop: cmd/bench-system
// (`make bench-system`) drives the deployed shop through its public path
// against a single-process reference, and saves the report in .run/bench.
//
// This package has no code: it makes the module more than one package, so
// that `go build ./...` (make lint) does not write the command's binary.
package bench
