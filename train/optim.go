package train

import (
	"math"

	"github.com/sugarme/gotch"
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
	// Fused runs torch.optim.AdamW(fused=True)'s kernel (optim
	// adamw_torch_fused): one kernel for all tensors, a skipped step decided
	// on the device. LibTorch has it for CUDA, and for the CPU from 2.4.
	Fused bool
}

// DefaultAdamWConfig is HF Trainer's: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// AdamW is PyTorch's AdamW over the adapter's trainable tensors, with HF
// Trainer's groups: Param.Decay false (biases, LayerNorm) gets no weight decay.
// A step is one call into LibTorch for all tensors (torch.AdamWForeach, or
// torch.AdamWFused).
type AdamW struct {
	Config  AdamWConfig
	Step    int64 // completed steps
	params  []peft.Param
	tensors []*ts.Tensor
	decay   []bool
	m, v    []*ts.Tensor
	steps   []*ts.Tensor // Fused: each tensor's step count, on the device
}

// NewAdamW makes an optimizer with zero moment estimates for params.
func NewAdamW(params []peft.Param, cfg AdamWConfig) *AdamW {
	o := &AdamW{Config: cfg, params: params, tensors: tensorsOf(params)}
	for _, p := range params {
		o.decay = append(o.decay, p.Decay)
		o.m = append(o.m, p.Tensor.MustZerosLike(false))
		o.v = append(o.v, p.Tensor.MustZerosLike(false))
		if cfg.Fused {
			o.steps = append(o.steps, torch.Full0(0, gotch.Float, p.Tensor.MustDevice()))
		}
	}
	return o
}

func tensorsOf(params []peft.Param) []*ts.Tensor {
	out := make([]*ts.Tensor, len(params))
	for i, p := range params {
		out[i] = p.Tensor
	}
	return out
}

// Update applies one AdamW step with learning rate lr to every parameter with a
// gradient:
//
//	p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)
func (o *AdamW) Update(lr float64) { o.update(lr, nil) }

// update is Update skipped when found (a bool tensor, or nil) is true. The
// multi-tensor step knows at once and reports skipped; the fused one skips
// on the device, counts the step on the host and reports false.
func (o *AdamW) update(lr float64, found *ts.Tensor) (skipped bool) {
	c := o.Config
	o.Step++
	s := torch.AdamWStep{LR: lr, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay, HF: c.HF, Decay: o.decay,
		BC1: 1 - math.Pow(c.Beta1, float64(o.Step)), BC2: math.Sqrt(1 - math.Pow(c.Beta2, float64(o.Step)))}
	if c.Fused {
		torch.AdamWFused(o.tensors, o.m, o.v, o.steps, s, nil, found)
		return false
	}
	if torch.AdamWForeach(o.tensors, o.m, o.v, s, found) {
		o.Step--
		return true
	}
	return false
}

// State returns the moment estimates, in parameter order (for checkpoints).
func (o *AdamW) State() (m, v []*ts.Tensor) { return o.m, o.v }

// syncStep makes Step the fused kernel's own count (which skipped steps did
// not advance) before a checkpoint, and setStep the device counts Step's
// after a resume.
func (o *AdamW) syncStep() {
	if len(o.steps) > 0 {
		o.Step = int64(torch.ToFloat32(o.steps[0])[0])
	}
}

func (o *AdamW) setStep(step int64) {
	o.Step = step
	for _, s := range o.steps {
		s.MustFill_(ts.FloatScalar(float64(step)))
	}
}

// Drop frees the moment estimates.
func (o *AdamW) Drop() {
	for i := range o.m {
		o.m[i].MustDrop()
		o.v[i].MustDrop()
	}
	for _, s := range o.steps {
		s.MustDrop()
	}
	o.m, o.v, o.steps = nil, nil, nil
}

// ZeroGrad zeroes every parameter's gradient in place, in one call.
func ZeroGrad(params []peft.Param) { torch.ZeroGrads(tensorsOf(params)) }

// ClipGradNorm scales the gradients so that their global L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm before clipping.
// maxNorm <= 0 only measures. It reads the norm back; the training step keeps
// it on the device instead (torch.ClipGradNorm).
func ClipGradNorm(params []peft.Param, maxNorm float64) float64 {
	total, _ := torch.ClipGradNorm(tensorsOf(params), maxNorm, nil, false)
	defer total.MustDrop()
	return float64(torch.ToFloat32(total)[0])
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
