package train_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
	"github.com/loraqa/loraqa/verify"
)

// TestTrainStepMatchesFixture replays train_step.json: three AdamW steps (lr 1e-3,
// wd 0.01 with HF's groups) on base + adapter with every dropout at 0.
func TestTrainStepMatchesFixture(t *testing.T) {
	fx := testutil.Shared(t, "fixtures", "tiny-distilbert-qa")
	st, err := verify.ReadTrainStep(fx)
	require.NoError(t, err)
	m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	defer m.Drop()
	m.Config.Dropout, m.Config.AttentionDropout, m.Config.QADropout = 0, 0, 0
	a, err := peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	defer a.Drop()
	for _, l := range a.Layers {
		l.Dropout = 0
	}
	params := a.Params()
	for _, p := range params {
		tr, ok := st.Trainable[p.Key]
		require.True(t, ok, "fixture lists %s", p.Key)
		assert.Equal(t, tr.WeightDecay, p.Decay, p.Key)
	}
	require.Len(t, params, len(st.Trainable))

	b := st.Batch
	var ids, mask []int64
	for i := range b.InputIDs {
		ids = append(ids, b.InputIDs[i]...)
		mask = append(mask, b.AttentionMask[i]...)
	}
	shape := []int64{int64(len(b.InputIDs)), int64(len(b.InputIDs[0]))}
	batch := bert.Batch{
		InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU),
		StartPositions: torch.FromInt64(b.StartPositions, []int64{shape[0]}, gotch.CPU),
		EndPositions:   torch.FromInt64(b.EndPositions, []int64{shape[0]}, gotch.CPU),
	}
	initial := map[string][]float32{}
	for _, p := range params {
		initial[p.Key] = torch.ToFloat32(p.Tensor)
	}
	opt := train.NewAdamW(params, train.AdamWConfig{Beta1: st.Hyper.Betas[0], Beta2: st.Hyper.Betas[1], Eps: st.Hyper.Eps, WeightDecay: st.Hyper.WeightDecay})
	defer opt.Drop()
	live := torch.LiveTensors()
	for step := 0; step < st.Hyper.Steps; step++ {
		out := m.Forward(batch, true)
		loss := float64(torch.ToFloat32(out.Loss)[0])
		assert.InDelta(t, st.Losses[step], loss, st.Tolerance["loss"], "loss at step %d", step+1)
		out.Loss.MustBackward()
		out.Drop()
		norm := train.ClipGradNorm(params, 0)
		assert.InDelta(t, st.GradNorms[step], norm, st.Tolerance["grad_norm"], "grad norm at step %d", step+1)
		if step == 0 {
			for _, p := range params {
				want, err := verify.Flatten(st.GradsStep1[p.Key])
				require.NoError(t, err)
				g := p.Tensor.MustGrad(false)
				got := torch.ToFloat32(g)
				g.MustDrop()
				assert.Less(t, maxAbs(got, want), st.Tolerance["grads_step1"], "grad of %s", p.Key)
			}
		}
		opt.Update(st.Hyper.LR)
		train.ZeroGrad(params)
		assert.Equal(t, live, torch.LiveTensors(), "no tensor survives a step")
	}
	for _, p := range params {
		want, err := verify.Flatten(st.ParamsAfter[p.Key])
		require.NoError(t, err)
		got := torch.ToFloat32(p.Tensor)
		if contains(st.NoiseDominated.Keys, p.Key) {
			// Its exact gradient is 0, so its exact value is the initial one; both
			// PyTorch's and ours drift from it by float32 noise normalised to <= lr a step.
			tol := st.NoiseDominated.Tolerance
			init := toF64(initial[p.Key])
			assert.LessOrEqual(t, maxAbs(got, init), tol, "%s drifts at most steps*lr", p.Key)
			assert.LessOrEqual(t, maxAbs(initial[p.Key], want), tol, "fixture's %s too", p.Key)
			continue
		}
		assert.Less(t, maxAbs(got, want), st.Tolerance["params_after"], "%s after %d steps", p.Key, st.Hyper.Steps)
	}
	var after bert.Output
	torch.NoGrad(func() { after = m.Forward(batch, true) })
	assert.InDelta(t, st.LossAfter, float64(torch.ToFloat32(after.Loss)[0]), st.Tolerance["loss"])
	after.Drop()
}

func maxAbs(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i])-want[i]))
	}
	return d
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}
