package hub

import (
	"errors"
	"fmt"
)

// ErrNotCached is the kind of a failure offline, when the model is not
// (completely) in the cache; match the kinds with errors.Is.
var ErrNotCached = errors.New("model not in the Hugging Face cache")

// ErrNotFound is the kind of a repository, revision or required file that
// does not exist (or is private, and no valid token was sent).
var ErrNotFound = errors.New("not found on the hub")

// ErrCorrupt is the kind of a file whose size or sha256 does not match what
// the hub announced.
var ErrCorrupt = errors.New("corrupt file")

// statusError is an HTTP error answer of the hub.
type statusError struct {
	url       string
	code      int
	errorCode string // X-Error-Code
	message   string // X-Error-Message
	kind      error
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.url, e.code)
	if e.errorCode != "" {
		s += " " + e.errorCode
	}
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

func (e *statusError) Unwrap() error { return e.kind }

// errEntryNotFound marks a 404 for one file of an existing repository.
var errEntryNotFound = errors.New("file not found")

// netError is a failure to reach the hub at all.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }
