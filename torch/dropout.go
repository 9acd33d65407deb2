package torch

import (
	"sync/atomic"

	"github.com/sugarme/gotch"
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
	if x.DType() != gotch.Float {
		return ts.MustDropout(x, p, true) // its noise, 1/(1-p) rounded to x's dtype, is what autocast runs
	}
	return maskDropout(x, p)
}

// maskDropout is LibTorch's CPU dropout on float32 with a quarter of its memory: the same
// draws (an empty_like(x).bernoulli_(1-p), as at::dropout makes its noise) and
// the same values (x·1/(1-p) where kept, 0 elsewhere), but for the backward
// autograd keeps a one-byte bool mask (masked_fill's) where at::dropout keeps
// its noise in x's dtype. On the attention probabilities, [B, H, L, L] in
// every layer, that is most of a training step's saved memory.
func maskDropout(x *ts.Tensor, p float64) *ts.Tensor {
	noise := x.MustEmptyLike(false)
	noise.MustBernoulliFloat_(1 - p)
	drop := noise.MustEq(ts.FloatScalar(0), true)
	defer drop.MustDrop()
	y := x.MustMaskedFill(drop, ts.FloatScalar(0), false)
	return y.MustMulScalar(ts.FloatScalar(1/(1-p)), true)
}

// DropoutReplaced reports whether SetDropout installed a dropout of its own.
func DropoutReplaced() bool { return dropoutHook.Load() != nil }

// SetDropout makes fn the dropout of every train-mode forward (nil: LibTorch's
// again) and returns a function that puts the previous one back. It is meant
// for tests that compare a train-mode forward mask for mask with another
// implementation (internal/counterdropout). bert runs attention through its
// explicit path in training, so the dropout on the attention probabilities
// goes through fn too.
func SetDropout(fn DropoutFunc) (restore func()) {
	var p *DropoutFunc
	if fn != nil {
		p = &fn
	}
	prev := dropoutHook.Swap(p)
	return func() { dropoutHook.Store(prev) }
}
