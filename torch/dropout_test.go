package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// pytorchZeros are the elements F.dropout(torch.ones(1000), 0.1) zeroes after
// torch.manual_seed(0) in PyTorch 2.15 (CPU; the same on Intel and AMD).
var pytorchZeros = []int{0, 3, 35, 48, 53, 63, 92, 101, 105, 107, 151, 158, 166, 173, 186, 197, 208, 212, 219, 226, 246,
	264, 265, 266, 267, 268, 270, 276, 311, 319, 330, 331, 344, 349, 357, 384, 388, 389, 395, 403, 410, 413, 414, 432, 460,
	465, 486, 493, 501, 518, 521, 522, 535, 536, 537, 549, 565, 567, 572, 573, 574, 581, 610, 617, 644, 659, 664, 666, 667,
	690, 702, 721, 724, 725, 736, 737, 742, 755, 776, 779, 786, 791, 797, 799, 800, 803, 812, 829, 843, 844, 845, 848, 851,
	861, 871, 872, 876, 893, 910, 924, 926, 927, 931, 963, 973, 975, 978, 987, 988, 990}

// TestDropoutDrawsPyTorchsMasks: on the CPU, from the same seed, Dropout
// (float32) drops exactly the elements PyTorch's F.dropout drops, in row-major
// order whatever the shape, and scales the others by float32(1/(1-p)).
func TestDropoutDrawsPyTorchsMasks(t *testing.T) {
	for _, shape := range [][]int64{{1000}, {10, 4, 25}} {
		ManualSeed(0)
		x := ts.MustOnes(shape, gotch.Float, gotch.CPU)
		y := Dropout(x, 0.1)
		vals := ToFloat32(y)
		x.MustDrop()
		y.MustDrop()
		zeros := []int{}
		for i, v := range vals {
			if v == 0 {
				zeros = append(zeros, i)
			} else {
				require.Equal(t, float32(1/0.9), v, "element %d: kept and scaled", i)
			}
		}
		assert.Equal(t, pytorchZeros, zeros, "shape %v: the dropped elements", shape)
	}
}

// TestSetLibTorchDraws: after SetLibTorchDraws(true) Dropout drops what
// LibTorch's at::dropout drops from the same seed; restoring draws PyTorch's
// masks again.
func TestSetLibTorchDraws(t *testing.T) {
	zeros := func(drop func(x *ts.Tensor) *ts.Tensor) []int {
		ManualSeed(0)
		x := ts.MustOnes([]int64{1000}, gotch.Float, gotch.CPU)
		defer x.MustDrop()
		y := drop(x)
		defer y.MustDrop()
		z := []int{}
		for i, v := range ToFloat32(y) {
			if v == 0 {
				z = append(z, i)
			}
		}
		return z
	}
	dropout := func(x *ts.Tensor) *ts.Tensor { return Dropout(x, 0.1) }
	restore := SetLibTorchDraws(true)
	got := zeros(dropout)
	restore()
	assert.Equal(t, zeros(func(x *ts.Tensor) *ts.Tensor { return ts.MustDropout(x, 0.1, true) }), got)
	assert.InDelta(t, 100, len(got), 40)
	assert.Equal(t, pytorchZeros, zeros(dropout), "restored")
}

// TestDropoutGradient: Dropout's gradient is the upstream gradient where an
// element was kept, scaled by 1/(1-p), and 0 where it was dropped; in bf16
// (which runs at::dropout itself) it is at::dropout's.
func TestDropoutGradient(t *testing.T) {
	run := func(dt gotch.DType, drop func(x *ts.Tensor) *ts.Tensor) (vals, grad, w []float32) {
		ManualSeed(11)
		x0 := ts.MustRandn([]int64{6, 4, 33}, gotch.Float, gotch.CPU)
		x := x0.MustTotype(dt, true).MustSetRequiresGrad(true, true)
		defer x.MustDrop()
		ManualSeed(5)
		y := drop(x)
		defer y.MustDrop()
		wt := ts.MustArange(ts.IntScalar(int64(y.Numel())), gotch.Float, gotch.CPU)
		wv := wt.MustView(y.MustSize(), true).MustTotype(dt, true)
		defer wv.MustDrop()
		loss := y.MustMul(wv, false).MustSum(dt, true)
		loss.MustBackward()
		loss.MustDrop()
		g := x.MustGrad(false)
		defer g.MustDrop()
		return ToFloat32(y), ToFloat32(g), ToFloat32(wv)
	}
	t.Run("float32", func(t *testing.T) {
		y, g, w := run(gotch.Float, func(x *ts.Tensor) *ts.Tensor { return Dropout(x, 0.1) })
		zeros := 0
		for i := range y {
			want := w[i] * float32(1/0.9)
			if y[i] == 0 {
				zeros++
				want = 0
			}
			require.InDelta(t, want, g[i], 1e-4*float64(w[i]+1), "element %d", i)
		}
		assert.InDelta(t, 0.1*float64(len(y)), zeros, 0.05*float64(len(y)), "about p of the elements are dropped")
	})
	t.Run("bfloat16", func(t *testing.T) {
		wantY, wantG, _ := run(gotch.BFloat16, func(x *ts.Tensor) *ts.Tensor { return ts.MustDropout(x, 0.1, true) })
		gotY, gotG, _ := run(gotch.BFloat16, func(x *ts.Tensor) *ts.Tensor { return Dropout(x, 0.1) })
		assert.Equal(t, wantY, gotY, "same kept elements, same values")
		assert.Equal(t, wantG, gotG, "same gradient")
	})
}

// BenchmarkDropoutDraws: Dropout's mask on the attention probabilities of a
// training step at 8×384 (12 heads), drawn as PyTorch draws it, next to
// LibTorch's own bernoulli_ (MKL's generator on Intel CPUs, the portable
// kernel elsewhere).
func BenchmarkDropoutDraws(b *testing.B) {
	x := ts.MustOnes([]int64{8, 12, 384, 384}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	b.Run("pytorch", func(b *testing.B) {
		for range b.N {
			Dropout(x, 0.1).MustDrop()
		}
	})
	b.Run("libtorch-bernoulli", func(b *testing.B) {
		for range b.N {
			ts.MustDropout(x, 0.1, true).MustDrop()
		}
	})
}
