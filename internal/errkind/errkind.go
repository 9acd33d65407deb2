// Package errkind marks errors with a kind: a sentinel error (config's
// ErrInvalid, engine's ErrBadInput, ...) that errors.Is finds beside
// whatever the error wraps, while the message stays the error's own.
package errkind

import "fmt"

// kindError is err marked as kind.
type kindError struct {
	kind, err error
}

func (k *kindError) Error() string   { return k.err.Error() }
func (k *kindError) Unwrap() []error { return []error{k.kind, k.err} }

// With returns err marked as kind: its message is err's, and errors.Is
// matches both kind and what err wraps.
func With(kind, err error) error { return &kindError{kind: kind, err: err} }

// Errorf is With(kind, fmt.Errorf(format, a...)).
func Errorf(kind error, format string, a ...any) error {
	return With(kind, fmt.Errorf(format, a...))
}
