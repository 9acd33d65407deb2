package train

import (
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// AdamWConfig holds torch.optim.AdamW's hyperparameters.
type AdamWConfig struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// HF selects transformers 4.x's own AdamW (optim adamw_hf, removed in
	// transformers 5): eps is added to √v before the bias correction, which
	// goes into the step size, and weight decay is applied after the update:
	//
	//	p ← p − lr·√(1−β2^t)/(1−β1^t) · m/(√v + eps);  p ← p − lr·wd·p
	HF bool
}

// DefaultAdamWConfig is HF Trainer's: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// AdamW is PyTorch's AdamW over the adapter's trainable tensors, with HF
// Trainer's groups: Param.Decay false (biases, LayerNorm) gets no weight decay.
type AdamW struct {
	Config AdamWConfig
	Step   int64 // completed steps
	params []peft.Param
	m, v   []*ts.Tensor
}

// NewAdamW makes an optimizer with zero moment estimates for params.
func NewAdamW(params []peft.Param, cfg AdamWConfig) *AdamW {
	o := &AdamW{Config: cfg, params: params}
	for _, p := range params {
		o.m = append(o.m, p.Tensor.MustZerosLike(false))
		o.v = append(o.v, p.Tensor.MustZerosLike(false))
	}
	return o
}

// Update applies one AdamW step with learning rate lr to every parameter with a
// gradient:
//
//	p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)
func (o *AdamW) Update(lr float64) {
	c := o.Config
	o.Step++
	bc1 := 1 - math.Pow(c.Beta1, float64(o.Step))
	bc2 := math.Sqrt(1 - math.Pow(c.Beta2, float64(o.Step)))
	torch.NoGrad(func() {
		for i, p := range o.params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			if p.Decay && c.WeightDecay != 0 && !c.HF {
				p.Tensor.MustMulScalar_(ts.FloatScalar(1 - lr*c.WeightDecay))
			}
			m, v := o.m[i], o.v[i]
			m.MustMulScalar_(ts.FloatScalar(c.Beta1))
			gm := g.MustMulScalar(ts.FloatScalar(1-c.Beta1), false)
			m.MustAdd_(gm)
			gm.MustDrop()
			v.MustMulScalar_(ts.FloatScalar(c.Beta2))
			g2 := g.MustMul(g, false)
			g2.MustMulScalar_(ts.FloatScalar(1 - c.Beta2))
			v.MustAdd_(g2)
			g2.MustDrop()
			g.MustDrop()
			denom := v.MustSqrt(false)
			step := lr / bc1
			if c.HF {
				step *= bc2
			} else {
				denom.MustDivScalar_(ts.FloatScalar(bc2))
			}
			denom.MustAddScalar_(ts.FloatScalar(c.Eps))
			upd := m.MustDiv(denom, false)
			denom.MustDrop()
			upd.MustMulScalar_(ts.FloatScalar(step))
			p.Tensor.MustSub_(upd)
			upd.MustDrop()
			if c.HF && p.Decay && c.WeightDecay != 0 {
				p.Tensor.MustMulScalar_(ts.FloatScalar(1 - lr*c.WeightDecay))
			}
		}
	})
}

// State returns the moment estimates, in parameter order (for checkpoints).
func (o *AdamW) State() (m, v []*ts.Tensor) { return o.m, o.v }

// Drop frees the moment estimates.
func (o *AdamW) Drop() {
	for i := range o.m {
		o.m[i].MustDrop()
		o.v[i].MustDrop()
	}
	o.m, o.v = nil, nil
}

// ZeroGrad zeroes every parameter's gradient in place.
func ZeroGrad(params []peft.Param) {
	torch.NoGrad(func() {
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if g.MustDefined() {
				g.MustZero_()
			}
			g.MustDrop()
		}
	})
}

// ClipGradNorm scales the gradients so that their global L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm before clipping.
// maxNorm <= 0 only measures. It is the step's one host round trip besides the loss.
func ClipGradNorm(params []peft.Param, maxNorm float64) float64 {
	var total float64
	torch.NoGrad(func() {
		var norms []*ts.Tensor
		var grads []*ts.Tensor
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			grads = append(grads, g)
			norms = append(norms, g.MustNorm(false))
		}
		if len(grads) == 0 {
			return
		}
		st := ts.MustStack(norms, 0)
		tn := st.MustNorm(true)
		total = float64(torch.ToFloat32(tn)[0])
		tn.MustDrop()
		for _, n := range norms {
			n.MustDrop()
		}
		coef := maxNorm / (total + 1e-6)
		for _, g := range grads {
			if maxNorm > 0 && coef < 1 {
				g.MustMulScalar_(ts.FloatScalar(coef))
			}
			g.MustDrop()
		}
	})
	return total
}

// LinearSchedule is HF's get_linear_schedule_with_warmup (warmup then linear
// decay to 0 at total) or, with constant, the constant schedule with warmup.
type LinearSchedule struct {
	Base     float64
	Warmup   int64
	Total    int64
	Constant bool
}

// LR is the learning rate for the step that has `done` completed steps before it.
func (s LinearSchedule) LR(done int64) float64 {
	if done < s.Warmup {
		return s.Base * float64(done) / float64(max64(1, s.Warmup))
	}
	if s.Constant {
		return s.Base
	}
	return s.Base * math.Max(0, float64(s.Total-done)/float64(max64(1, s.Total-s.Warmup)))
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
