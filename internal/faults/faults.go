// Package faults holds the points where tests inject failures into code that
// cannot fail on demand (an out-of-memory in the middle of a forward pass).
// Production code calls them; they do nothing unless a test has set them.
// Being internal, they are no part of loraqa's API.
package faults

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/loraqa/loraqa/bert"
)

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

var (
	cycleMu     sync.Mutex
	beforeCycle atomic.Pointer[map[any]func()]
)

// SetBeforeCycle installs fn, which the model worker of engine e (an
// *engine.Engine) calls before each of its cycles; fn may block the worker.
// It returns a function that removes fn.
func SetBeforeCycle(e any, fn func()) (restore func()) {
	update := func(set func(m map[any]func())) {
		cycleMu.Lock()
		defer cycleMu.Unlock()
		m := map[any]func(){}
		if old := beforeCycle.Load(); old != nil {
			maps.Copy(m, *old)
		}
		set(m)
		beforeCycle.Store(&m)
	}
	update(func(m map[any]func()) { m[e] = fn })
	return func() { update(func(m map[any]func()) { delete(m, e) }) }
}

// BeforeCycle calls the function SetBeforeCycle installed for e, if any.
func BeforeCycle(e any) {
	if m := beforeCycle.Load(); m != nil {
		if fn := (*m)[e]; fn != nil {
			fn()
		}
	}
}

// OnWorker runs fn with the base model of engine e (an *engine.Engine) on
// its model worker, between two cycles, after the queries already queued
// (the adapter attached is whichever the worker used last); fn must not keep
// the model. A panic in fn, LibTorch's included, is returned as an error.
// Package engine installs it.
var OnWorker func(e any, fn func(m *bert.Model) error) error
