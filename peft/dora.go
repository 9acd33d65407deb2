package peft

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// DoRA (weight-decomposed LoRA) as PEFT defines it for Linear layers: the
// layer computes m ⊙ (W + s·B·A)x / ‖W + s·B·A‖ + b, where ‖·‖ is the L2 norm
// of each output row, m is the trained magnitude vector, and the norm is
// treated as a constant in the backward pass (PEFT detaches it). Written, as
// PEFT does, on top of the base output:
//
//	y = base(x) + (m/‖·‖ − 1)·(x_d Wᵀ) + (m/‖·‖)·s·B·A·x_d
//
// where x_d is the LoRA dropout's output and x_d Wᵀ reuses base(x) − b when
// there is no dropout.

// weightNorm is ‖W + s·B·A‖ per output row, float32, without gradient.
func (l *Linear) weightNorm() *ts.Tensor {
	var n *ts.Tensor
	torch.NoGrad(func() {
		ba := l.B.MustMatmul(l.A, false)
		ba.MustMulScalar_(ts.FloatScalar(l.Scaling))
		w := l.Base.Weight
		if w.DType() != gotch.Float {
			w = w.MustTotype(gotch.Float, false)
			defer w.MustDrop()
		}
		sum := w.MustAdd(ba, false)
		ba.MustDrop()
		n = sum.MustNormScalaroptDim(ts.FloatScalar(2), []int64{1}, false, true)
		sum.MustDrop()
	})
	return n
}

// forwardDoRA is Forward for a DoRA layer that is not merged.
func (l *Linear) forwardDoRA(x *ts.Tensor, train bool) *ts.Tensor {
	out := l.Base.Forward(x, train)
	norm := l.weightNorm()
	scale := l.Magnitude.MustDiv(norm, false) // [out]; gradient to m only
	norm.MustDrop()
	xd := x
	dropped := train && l.Dropout > 0
	if dropped {
		xd = torch.Dropout(x, l.Dropout)
	}
	xa := ts.MustLinear(xd, l.A, ts.None)
	lora := ts.MustLinear(xa, l.B, ts.None)
	xa.MustDrop()
	var base *ts.Tensor
	switch {
	case dropped: // PEFT recomputes the base product on the dropped-out input
		base = ts.MustLinear(xd, l.Base.Weight, ts.None)
		xd.MustDrop()
	case l.Base.Bias != nil:
		base = out.MustSub(l.Base.Bias, false)
	default:
		base = out.MustMulScalar(ts.FloatScalar(1), false)
	}
	sm1 := scale.MustSubScalar(ts.FloatScalar(1), false)
	t1 := base.MustMul(sm1, true)
	sm1.MustDrop()
	t2 := lora.MustMul(scale, true)
	scale.MustDrop()
	t2.MustMulScalar_(ts.FloatScalar(l.Scaling))
	d := t1.MustAdd(t2, true)
	t2.MustDrop()
	res := out.MustAdd(d, true)
	d.MustDrop()
	return res
}
