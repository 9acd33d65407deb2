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

// libtorchDraws makes Dropout draw its float32 CPU masks with LibTorch's own
// bernoulli_ (SetLibTorchDraws).
var libtorchDraws atomic.Bool

// SetLibTorchDraws makes Dropout draw its float32 CPU masks with LibTorch's
// own bernoulli_ (on: faster on Intel CPUs, where that is MKL's generator, but
// other masks than PyTorch's from the same seed, and other ones on Intel and
// AMD) or as PyTorch draws them (off, the default). It returns a function that
// puts the previous choice back.
func SetLibTorchDraws(on bool) (restore func()) {
	prev := libtorchDraws.Swap(on)
	return func() { libtorchDraws.Store(prev) }
}

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

// maskDropout is PyTorch's dropout on float32 with a quarter of its memory:
// the same values (x·1/(1-p) where kept, 0 elsewhere), but for the backward
// autograd keeps a one-byte bool mask (masked_fill's) where at::dropout keeps
// its noise in x's dtype. On the attention probabilities, [B, H, L, L] in
// every layer, that is most of a training step's saved memory. x is a dense
// row-major tensor, as every caller's is.
//
// On the CPU the mask is drawn as current PyTorch draws it on every processor
// (bernoulli_'s portable kernel: one float64 uniform per element, in order,
// kept where it is below 1-p), so a seed gives PyTorch's masks and the same
// run on Intel and AMD CPUs alike. LibTorch 2.1.2's own bernoulli_ takes MKL's
// generator on Intel CPUs, which draws other masks from the same seed, faster
// (docs/benchmarks.md, "Dropout draws"). Elsewhere the device's own
// bernoulli_ draws it, and on the CPU too after SetLibTorchDraws(true).
func maskDropout(x *ts.Tensor, p float64) *ts.Tensor {
	var drop *ts.Tensor
	if !x.MustDevice().IsCuda() && !libtorchDraws.Load() {
		u := ts.MustEmpty(x.MustSize(), gotch.Double, gotch.CPU)
		u.MustUniform_(0, 1)
		drop = u.MustGe(ts.FloatScalar(1-p), true)
	} else {
		noise := x.MustEmptyLike(false)
		noise.MustBernoulliFloat_(1 - p)
		drop = noise.MustEq(ts.FloatScalar(0), true)
	}
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
