package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestMaskDropoutIsLibTorchs: from the same seed, Dropout (the bool-mask
// dropout) keeps and scales exactly the elements LibTorch's at::dropout keeps
// and scales, and its gradient is the same (float32; other dtypes go through
// at::dropout itself, whose noise holds 1/(1-p) rounded to the dtype).
func TestMaskDropoutIsLibTorchs(t *testing.T) {
	for _, dt := range []gotch.DType{gotch.Float, gotch.BFloat16} {
		t.Run(DTypeName(dt), func(t *testing.T) {
			run := func(drop func(x *ts.Tensor) *ts.Tensor) (vals, grad []float32) {
				ManualSeed(11)
				x0 := ts.MustRandn([]int64{6, 4, 33}, gotch.Float, gotch.CPU)
				x := x0.MustTotype(dt, true).MustSetRequiresGrad(true, true)
				defer x.MustDrop()
				ManualSeed(5)
				y := drop(x)
				defer y.MustDrop()
				w := ts.MustArange(ts.IntScalar(int64(y.Numel())), gotch.Float, gotch.CPU)
				wv := w.MustView(y.MustSize(), true).MustTotype(dt, true)
				defer wv.MustDrop()
				loss := y.MustMul(wv, false).MustSum(dt, true)
				loss.MustBackward()
				loss.MustDrop()
				g := x.MustGrad(false)
				defer g.MustDrop()
				return ToFloat32(y), ToFloat32(g)
			}
			wantY, wantG := run(func(x *ts.Tensor) *ts.Tensor { return ts.MustDropout(x, 0.1, true) })
			gotY, gotG := run(func(x *ts.Tensor) *ts.Tensor { return Dropout(x, 0.1) })
			require.Len(t, gotY, len(wantY))
			zeros := 0
			for i := range wantY {
				if wantY[i] == 0 {
					zeros++
				}
			}
			assert.InDelta(t, 0.1*float64(len(wantY)), zeros, 0.05*float64(len(wantY)), "about p of the elements are dropped")
			assert.Equal(t, wantY, gotY, "same kept elements, same values")
			assert.Equal(t, wantG, gotG, "same gradient")
		})
	}
}
