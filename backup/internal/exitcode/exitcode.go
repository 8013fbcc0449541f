// Package exitcode gives errors the exit status the backup command ends
// with, so that scripts, Nomad script checks and operators can tell a
// failed backup from a database that has none, an unknown database or an
// unreachable agent. Packages wrap their errors with E; main maps them with
// Of, in one place.
package exitcode

import (
	"errors"
	"fmt"
)

// The exit statuses of the backup command (printed by `backup help`).
const (
	OK = 0
	// Failed: the operation ran and failed (a backup, a dump, a drill's
	// comparison, a restore), or status found a database overdue or a
	// failed drill. For check-archive: the RPO is above its limit (a
	// Consul warning).
	Failed = 1
	// Critical is check-archive's "archiving is failing" (a Consul critical).
	Critical = 2
	// NoBackup: there is no backup to use. For `task init` this is the
	// signal to run initdb; for status and restore, nothing is covered yet.
	NoBackup = 3
	// UnknownDB: a database name that is not one of the shop's.
	UnknownDB = 4
	// Unreachable: Nomad, Consul, PostgreSQL or a repository did not answer.
	Unreachable = 5
	// Usage: bad arguments or environment.
	Usage = 64
)

// Error carries an exit status with its cause.
type Error struct {
	Code int
	Err  error
	// Quiet errors were reported already (check-archive's JSON line):
	// main exits with the status without printing them.
	Quiet bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// E returns err with the exit status code; nil stays nil.
func E(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Errorf is E with a formatted error.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Quietly is E for an outcome the command has already printed.
func Quietly(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err, Quiet: true}
}

// IsQuiet reports whether err needs no message.
func IsQuiet(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Quiet
}

// Of returns the exit status for err: 0 for nil, the innermost-wrapping
// Error's code, else Failed.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}
