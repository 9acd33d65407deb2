package torch

import (
	"sync/atomic"

	"github.com/sugarme/gotch/ts"
)

// DropoutFunc is an inverted dropout in train mode: it returns a new tensor
// with x's elements zeroed with probability p and the others scaled by
// 1/(1-p). It does not consume x.
type DropoutFunc func(x *ts.Tensor, p float64) *ts.Tensor

// dropoutHook replaces LibTorch's dropout when set (SetDropout).
var dropoutHook atomic.Pointer[DropoutFunc]

// Dropout is the dropout every train-mode forward in bert and peft calls (with
// p > 0): LibTorch's, unless SetDropout installed another. x is not consumed.
func Dropout(x *ts.Tensor, p float64) *ts.Tensor {
	if h := dropoutHook.Load(); h != nil {
		return (*h)(x, p)
	}
	return ts.MustDropout(x, p, true)
}

// SetDropout makes fn the dropout of every train-mode forward (nil: LibTorch's
// again) and returns a function that puts the previous one back. It is meant
// for tests that compare a train-mode forward mask for mask with another
// implementation (internal/counterdropout); while one is set, bert runs attention
// through its explicit path (DropoutHooked), so that the dropout on the
// attention probabilities goes through fn too.
func SetDropout(fn DropoutFunc) (restore func()) {
	var p *DropoutFunc
	if fn != nil {
		p = &fn
	}
	prev := dropoutHook.Swap(p)
	return func() { dropoutHook.Store(prev) }
}

// DropoutHooked reports whether SetDropout installed a dropout.
func DropoutHooked() bool { return dropoutHook.Load() != nil }
