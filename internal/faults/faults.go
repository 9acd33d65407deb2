// Package faults holds the points where tests inject failures into code that
// cannot fail on demand (an out-of-memory in the middle of a forward pass).
// Production code calls them; they do nothing unless a test has set them.
// Being internal, they are no part of loraqa's API.
package faults

import "sync/atomic"

var forward atomic.Pointer[func(batch int)]

// SetForward installs fn, which qa.Logits calls after the forward pass of each
// batch (its index), with the batch's tensors live, inside the guard that
// frees them on a failure. It returns a function that removes fn.
func SetForward(fn func(batch int)) (restore func()) {
	forward.Store(&fn)
	return func() { forward.Store(nil) }
}

// Forward calls the function SetForward installed, if any.
func Forward(batch int) {
	if f := forward.Load(); f != nil {
		(*f)(batch)
	}
}
