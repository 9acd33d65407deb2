package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// adamSteps runs three steps on p = [1, -2] with the gradient g·(1, 1/2, 1/4)
// per step and returns p, both with loraqa's AdamW.
func adamSteps(t *testing.T, hf bool, decay bool) []float32 {
	p0, err := torch.FromFloat32([]float32{1, -2}, []int64{2}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	p := p0.MustSetRequiresGrad(true, true)
	defer p.MustDrop()
	params := []peft.Param{{Key: "w", Tensor: p, Decay: decay}}
	o := NewAdamW(params, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-3, WeightDecay: 0.1, HF: hf})
	defer o.Drop()
	for s, f := range []float64{1, 0.5, 0.25} {
		c, err := torch.FromFloat32([]float32{float32(0.3 * f), float32(-0.7 * f)}, []int64{2}, gotch.Float, gotch.CPU)
		require.NoError(t, err)
		l := p.MustMul(c, false).MustSum(gotch.Float, true)
		l.MustBackward()
		l.MustDrop()
		c.MustDrop()
		o.Update(0.1 * float64(s+1))
		ZeroGrad(params)
	}
	return torch.ToFloat32(p)
}

// The formulas by hand, in float64: torch.optim.AdamW and transformers 4.x's
// AdamW (eps before the bias correction, decay after the update).
func adamByHand(hf, decay bool) []float64 {
	p := []float64{1, -2}
	g0 := []float64{0.3, -0.7}
	m, v := make([]float64, 2), make([]float64, 2)
	b1, b2, eps, wd := 0.9, 0.999, 1e-3, 0.1
	for s, f := range []float64{1, 0.5, 0.25} {
		lr, st := 0.1*float64(s+1), float64(s+1)
		for i := range p {
			g := g0[i] * f
			if decay && !hf {
				p[i] *= 1 - lr*wd
			}
			m[i] = b1*m[i] + (1-b1)*g
			v[i] = b2*v[i] + (1-b2)*g*g
			bc1, bc2 := 1-math.Pow(b1, st), 1-math.Pow(b2, st)
			if hf {
				p[i] -= lr * math.Sqrt(bc2) / bc1 * m[i] / (math.Sqrt(v[i]) + eps)
				if decay {
					p[i] -= lr * wd * p[i]
				}
			} else {
				p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
			}
		}
	}
	return p
}

func TestAdamWTorchAndHFByHand(t *testing.T) {
	for _, hf := range []bool{false, true} {
		for _, decay := range []bool{false, true} {
			got, want := adamSteps(t, hf, decay), adamByHand(hf, decay)
			for i := range want {
				assert.InDelta(t, want[i], float64(got[i]), 2e-6, "hf %v decay %v p[%d]", hf, decay, i)
			}
		}
	}
	// The two differ (eps 1e-3 makes it visible): the check can fail.
	a, b := adamByHand(false, true), adamByHand(true, true)
	require.Greater(t, math.Abs(a[0]-b[0]), 1e-4)
}

// metric_for_best_model: f1 and exact_match higher, loss lower is better.
func TestBestModelByMetric(t *testing.T) {
	evals := []EvalResult{{Loss: 2, F1: 50, ExactMatch: 40}, {Loss: 1, F1: 45, ExactMatch: 42}, {Loss: 1.5, F1: 60, ExactMatch: 30}}
	for metric, wantStep := range map[string]int64{"f1": 3, "loss": 2, "exact_match": 2} {
		var s State
		for i, e := range evals {
			s.recordEval(int64(i+1), i+1, e, metric)
		}
		assert.Equal(t, checkpointName(wantStep), s.BestCheckpoint, metric)
	}
}
