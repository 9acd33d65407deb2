package config

import (
	"errors"

	"github.com/loraqa/loraqa/internal/errkind"
)

// ErrUnknownKey is the kind of a key (in a file, a --set or the environment)
// that is not a config key; match it with errors.Is.
var ErrUnknownKey = errors.New("unknown config key")

// ErrType is the kind of a value of the wrong type for its key.
var ErrType = errors.New("config value of the wrong type")

// ErrInvalid is the kind of a value out of its allowed range or set.
var ErrInvalid = errors.New("invalid config value")

// errorf is an error message that matches kind, one of the sentinels.
var errorf = errkind.Errorf
