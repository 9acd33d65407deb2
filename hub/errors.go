package hub

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is.
var (
	// ErrNotCached: offline, and the model is not (completely) in the cache.
	ErrNotCached = errors.New("model not in the Hugging Face cache")
	// ErrNotFound: the repository, revision or a required file does not exist
	// (or is private and no valid token was sent).
	ErrNotFound = errors.New("not found on the hub")
	// ErrCorrupt: a file's size or sha256 does not match what the hub announced.
	ErrCorrupt = errors.New("corrupt file")
)

// errEntryNotFound marks a 404 for one file of an existing repository.
var errEntryNotFound = errors.New("file not found")

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

// netError is a failure to reach the hub at all.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }
