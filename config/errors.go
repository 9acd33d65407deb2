package config

import (
	"errors"

	"github.com/loraqa/loraqa/internal/errkind"
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

// errorf is an error message that matches kind, one of the sentinels.
var errorf = errkind.Errorf
