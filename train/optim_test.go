package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// The per-tensor step loraqa ran before the multi-tensor one: about 14
// LibTorch calls per parameter. TestLeanStepSameBits holds the new step to
// these numbers, bit for bit.

func refUpdate(params []peft.Param, m, v []*ts.Tensor, c AdamWConfig, step int64, lr float64) {
	bc1 := 1 - math.Pow(c.Beta1, float64(step))
	bc2 := math.Sqrt(1 - math.Pow(c.Beta2, float64(step)))
	torch.NoGrad(func() {
		for i, p := range params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			if p.Decay && c.WeightDecay != 0 && !c.HF {
				p.Tensor.MustMulScalar_(ts.FloatScalar(1 - lr*c.WeightDecay))
			}
			m[i].MustMulScalar_(ts.FloatScalar(c.Beta1))
			gm := g.MustMulScalar(ts.FloatScalar(1-c.Beta1), false)
			m[i].MustAdd_(gm)
			gm.MustDrop()
			v[i].MustMulScalar_(ts.FloatScalar(c.Beta2))
			g2 := g.MustMul(g, false)
			g2.MustMulScalar_(ts.FloatScalar(1 - c.Beta2))
			v[i].MustAdd_(g2)
			g2.MustDrop()
			g.MustDrop()
			denom := v[i].MustSqrt(false)
			s := lr / bc1
			if c.HF {
				s *= bc2
			} else {
				denom.MustDivScalar_(ts.FloatScalar(bc2))
			}
			denom.MustAddScalar_(ts.FloatScalar(c.Eps))
			upd := m[i].MustDiv(denom, false)
			denom.MustDrop()
			upd.MustMulScalar_(ts.FloatScalar(s))
			p.Tensor.MustSub_(upd)
			upd.MustDrop()
			if c.HF && p.Decay && c.WeightDecay != 0 {
				p.Tensor.MustMulScalar_(ts.FloatScalar(1 - lr*c.WeightDecay))
			}
		}
	})
}

func refClip(params []peft.Param, maxNorm float64) float64 {
	var total float64
	torch.NoGrad(func() {
		var norms, grads []*ts.Tensor
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			grads = append(grads, g)
			norms = append(norms, g.MustNorm(false))
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

// twinParams makes two identical sets of parameters with gradients from
// seed: shapes of a LoRA adapter, one without a gradient, decay mixed.
func twinParams(t *testing.T, seed int64) (a, b []peft.Param) {
	shapes := [][]int64{{16, 32}, {32, 16}, {2, 32}, {2}, {8, 8}}
	torch.ManualSeed(seed)
	for i, s := range shapes {
		w := ts.MustRandn(s, gotch.Float, gotch.CPU)
		for _, set := range []*[]peft.Param{&a, &b} {
			p := w.MustDetach(false)
			p.MustRequiresGrad_(true)
			*set = append(*set, peft.Param{Key: fmt.Sprint(i), Tensor: p, Decay: i != 3})
		}
		w.MustDrop()
	}
	return a, b
}

func setGrads(t *testing.T, sets [][]peft.Param, scale float64, seed int64) {
	torch.ManualSeed(seed)
	for i := range sets[0] {
		if i == 4 {
			continue // no gradient: skipped by both
		}
		g := ts.MustRandn(sets[0][i].Tensor.MustSize(), gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(scale), true)
		for _, set := range sets {
			y := set[i].Tensor.MustMul(g, false).MustSum(gotch.Float, true)
			y.MustBackward()
			y.MustDrop()
		}
		g.MustDrop()
	}
}

func bitsEqual(t *testing.T, a, b *ts.Tensor, what string) {
	t.Helper()
	x, y := torch.ToFloat32(a), torch.ToFloat32(b)
	require.Equal(t, len(x), len(y))
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			t.Fatalf("%s: element %d differs: %v vs %v", what, i, x[i], y[i])
		}
	}
}

// TestLeanStepSameBits: the multi-tensor clip + AdamW + zero-grad gives the
// per-tensor step's numbers bit for bit, over several steps, with and
// without clipping, for torch's AdamW and HF's.
func TestLeanStepSameBits(t *testing.T) {
	for _, c := range []struct {
		name    string
		hf      bool
		maxNorm float64
		scale   float64
	}{
		{"adamw_torch clipped", false, 1, 3},
		{"adamw_torch unclipped", false, 1, 0.001},
		{"adamw_torch measure only", false, 0, 3},
		{"adamw_hf clipped", true, 0.5, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, lean := twinParams(t, 7)
			cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, HF: c.hf}
			var rm, rv []*ts.Tensor
			for _, p := range ref {
				rm = append(rm, p.Tensor.MustZerosLike(false))
				rv = append(rv, p.Tensor.MustZerosLike(false))
			}
			opt := NewAdamW(lean, cfg)
			defer opt.Drop()
			for step := int64(1); step <= 4; step++ {
				setGrads(t, [][]peft.Param{ref, lean}, c.scale, 100+step)
				rn := refClip(ref, c.maxNorm)
				total, found := torch.ClipGradNorm(tensorsOf(lean), c.maxNorm, nil, true)
				ln := torch.ToFloat32(total)[0]
				require.Equal(t, math.Float32bits(float32(rn)), math.Float32bits(ln), "total norm at step %d", step)
				refUpdate(ref, rm, rv, cfg, step, 0.05*float64(step))
				require.False(t, opt.update(0.05*float64(step), found))
				total.MustDrop()
				found.MustDrop()
				for i := range ref {
					bitsEqual(t, ref[i].Tensor, lean[i].Tensor, fmt.Sprintf("step %d param %d", step, i))
					bitsEqual(t, rm[i], opt.m[i], fmt.Sprintf("step %d exp_avg %d", step, i))
					bitsEqual(t, rv[i], opt.v[i], fmt.Sprintf("step %d exp_avg_sq %d", step, i))
				}
				ZeroGrad(lean)
				ZeroGrad(ref)
				for i := 0; i < 4; i++ {
					g := lean[i].Tensor.MustGrad(false)
					require.Equal(t, float32(0), torch.ToFloat32(g.MustAbs(false).MustMax(true))[0])
					g.MustDrop()
				}
			}
			require.Equal(t, int64(4), opt.Step)
		})
	}
}

// TestStepSkippedOnNonFinite: a NaN gradient makes found true; the
// multi-tensor step then changes nothing (parameters, moments, step count).
func TestStepSkippedOnNonFinite(t *testing.T) {
	ref, lean := twinParams(t, 3)
	_ = ref
	opt := NewAdamW(lean, DefaultAdamWConfig())
	defer opt.Drop()
	setGrads(t, [][]peft.Param{lean}, 1, 5)
	before := torch.ToFloat32(lean[0].Tensor)
	torch.NoGrad(func() {
		g := lean[1].Tensor.MustGrad(false)
		g.MustFill_(ts.FloatScalar(math.NaN()))
		g.MustDrop()
	})
	total, found := torch.ClipGradNorm(tensorsOf(lean), 1, nil, true)
	defer total.MustDrop()
	defer found.MustDrop()
	require.True(t, math.IsNaN(float64(torch.ToFloat32(total)[0])))
	require.True(t, opt.update(1e-2, found))
	require.Equal(t, int64(0), opt.Step)
	require.Equal(t, before, torch.ToFloat32(lean[0].Tensor))
	require.Equal(t, make([]float32, 16*32), torch.ToFloat32(opt.m[0]))
}

// TestLeanStepCalls: clipping, AdamW and zero-grad over the 26 tensors of a
// distilbert-base adapter are a handful of LibTorch calls, not one per tensor.
func TestLeanStepCalls(t *testing.T) {
	var params []peft.Param
	for i := 0; i < 26; i++ {
		p := ts.MustRandn([]int64{4, 4}, gotch.Float, gotch.CPU)
		p.MustRequiresGrad_(true)
		params = append(params, peft.Param{Key: fmt.Sprint(i), Tensor: p, Decay: true})
	}
	opt := NewAdamW(params, DefaultAdamWConfig())
	defer opt.Drop()
	// The counter is the process's: a finalizer of an earlier test's tensor
	// (its free is a LibTorch call) can land in the window, so the fewest of
	// three steps counts.
	calls := int64(math.MaxInt64)
	for range 3 {
		for _, p := range params {
			y := p.Tensor.MustSum(gotch.Float, false)
			y.MustBackward()
			y.MustDrop()
		}
		c0 := torch.Calls()
		total, found := torch.ClipGradNorm(tensorsOf(params), 1, nil, true)
		opt.update(2e-5, found)
		ZeroGrad(params)
		total.MustDrop()
		found.MustDrop()
		calls = min(calls, torch.Calls()-c0)
	}
	require.LessOrEqual(t, calls, int64(8), "clip + AdamW + zero-grad over 26 tensors")
	require.Greater(t, calls, int64(2))
}

// TestFusedAdamW: where LibTorch has the fused AdamW for the CPU (2.4 on),
// its steps match the multi-tensor ones to float rounding, and a found inf
// skips the step on the device (the step counts stay); before 2.4 the
// trainer refuses it with a message that says so.
func TestFusedAdamW(t *testing.T) {
	if !torch.LibTorchAtLeast(2, 4) {
		err := torch.Catch(func() {
			p := ts.MustZeros([]int64{2}, gotch.Float, gotch.CPU)
			defer p.MustDrop()
			opt := NewAdamW([]peft.Param{{Key: "p", Tensor: p}}, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fused: true})
			defer opt.Drop()
			p.MustRequiresGrad_(true)
			y := p.MustSum(gotch.Float, false)
			y.MustBackward()
			y.MustDrop()
			opt.Update(1e-3)
		})
		require.Error(t, err, "LibTorch %s has no fused AdamW for the CPU", torch.LibTorchVersion())
		return
	}
	foreach, fused := twinParams(t, 11)
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	a := NewAdamW(foreach, cfg)
	defer a.Drop()
	cfg.Fused = true
	b := NewAdamW(fused, cfg)
	defer b.Drop()
	for step := int64(1); step <= 3; step++ {
		setGrads(t, [][]peft.Param{foreach, fused}, 1, 50+step)
		a.Update(0.01)
		b.Update(0.01)
		ZeroGrad(foreach)
		ZeroGrad(fused)
		for i := range foreach {
			x, y := torch.ToFloat32(foreach[i].Tensor), torch.ToFloat32(fused[i].Tensor)
			for j := range x {
				require.InDelta(t, x[j], y[j], 1e-6, "step %d param %d", step, i)
			}
		}
	}
	setGrads(t, [][]peft.Param{fused}, 1, 99)
	before := torch.ToFloat32(fused[0].Tensor)
	found := torch.Full0(1, gotch.Bool, gotch.CPU)
	defer found.MustDrop()
	b.update(0.01, found)
	b.syncStep()
	require.Equal(t, int64(3), b.Step, "the skipped step did not count on the device")
	require.Equal(t, before, torch.ToFloat32(fused[0].Tensor))
}
