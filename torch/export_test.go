package torch

import (
	"strings"

	lib "github.com/sugarme/gotch/libtch"
)

// Accessors that only the tests use.

// BuildConfig is LibTorch's own account of how it was built (at::show_config).
func BuildConfig() string { return lib.LoraqaShowConfig() }

// GradEnabled reports LibTorch's grad mode on the calling OS thread.
func GradEnabled() bool {
	prev := gradSetEnabled(true)
	gradSetEnabled(prev)
	return prev
}

// IsOutOfMemory reports whether the failure was an allocation that did not fit.
func (e *Error) IsOutOfMemory() bool {
	m := strings.ToLower(e.Msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "can't allocate memory") || strings.Contains(m, "defaultcpuallocator")
}
