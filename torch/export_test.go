package torch

import (
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
