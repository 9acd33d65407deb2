package torch

import "runtime"

// NoGrad runs fn with autograd off and restores the previous grad mode afterwards,
// also when fn panics (gotch's ts.NoGrad always switches it back on, and leaves it
// off after a panic).
//
// LibTorch keeps the grad mode per OS thread, so fn runs with the goroutine locked
// to its thread: every op in fn sees the mode NoGrad set.
func NoGrad(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := gradSetEnabled(false)
	defer gradSetEnabled(prev)
	fn()
}
