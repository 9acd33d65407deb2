package config

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is.
var (
	// ErrUnknownKey: a key (file, --set or environment) that is not a config key.
	ErrUnknownKey = errors.New("unknown config key")
	// ErrType: a value of the wrong type for its key.
	ErrType = errors.New("config value of the wrong type")
	// ErrInvalid: a value out of its allowed range or set.
	ErrInvalid = errors.New("invalid config value")
)

// kindError is an error message that matches one of the sentinels.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
