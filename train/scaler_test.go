package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// scalerTrace is what a scaler did over a gradient sequence, step by step.
type scalerTrace struct {
	Scale    []float64 `json:"scale"`
	Tracker  []int64   `json:"tracker"`
	Skipped  []bool    `json:"skipped"`
	Unscaled [][]any   `json:"unscaled"` // float, or "inf"/"nan" as Python prints them
	Torch    string    `json:"torch"`
}

// scalerSequence: 4,700 steps of small gradients with infs and a NaN
// injected, so that the scale backs off (three times in a row at the start,
// as fp16 training does, then later), grows after 2,000 finite steps, and
// backs off and grows again.
func scalerSequence() (grads [][]float32, inject map[int]string) {
	grads = make([][]float32, 4700)
	for i := range grads {
		grads[i] = make([]float32, 4)
		for j := range grads[i] {
			grads[i][j] = float32(math.Sin(0.37*float64(i)+float64(j)) * 1e-3)
		}
	}
	return grads, map[int]string{0: "inf", 1: "inf", 2: "inf", 500: "nan", 2600: "inf", 2601: "nan"}
}

// runScaler drives a GradScaler over the sequence as the trainer does:
// scale, backward, unscale, a step the optimizer skips on inf/NaN, update.
func runScaler(t *testing.T, cfg GradScalerConfig, grads [][]float32, inject map[int]string) scalerTrace {
	p := ts.MustZeros([]int64{4}, gotch.Float, gotch.CPU)
	p.MustRequiresGrad_(true)
	defer p.MustDrop()
	params := []peft.Param{{Key: "p", Tensor: p}}
	opt := NewAdamW(params, DefaultAdamWConfig())
	defer opt.Drop()
	s := NewGradScaler(cfg, gotch.CPU)
	defer s.Drop()
	var tr scalerTrace
	live := torch.LiveTensors()
	for i, g := range grads {
		gv := append([]float32(nil), g...)
		switch inject[i] {
		case "inf":
			gv[1] = float32(math.Inf(1))
		case "nan":
			gv[1] = float32(math.NaN())
		}
		gt, err := torch.FromFloat32(gv, []int64{4}, gotch.Float, gotch.CPU)
		require.NoError(t, err)
		c := s.Scale(gt)
		y := p.MustMul(c, false).MustSum(gotch.Float, true)
		y.MustBackward()
		for _, x := range []*ts.Tensor{gt, c, y} {
			x.MustDrop()
		}
		s.Unscale([]*ts.Tensor{p})
		grad := p.MustGrad(false)
		var row []any
		for _, v := range torch.ToFloat32(grad) {
			switch {
			case math.IsInf(float64(v), 1):
				row = append(row, "inf")
			case math.IsNaN(float64(v)):
				row = append(row, "nan")
			default:
				row = append(row, float64(v))
			}
		}
		grad.MustDrop()
		skip := s.Found().MustGt(ts.FloatScalar(0), false)
		tr.Skipped = append(tr.Skipped, opt.update(0.1, skip))
		skip.MustDrop()
		ZeroGrad(params)
		s.Update()
		st := s.State()
		tr.Scale, tr.Tracker, tr.Unscaled = append(tr.Scale, st.Scale), append(tr.Tracker, st.GrowthTracker), append(tr.Unscaled, row)
	}
	require.Equal(t, live, torch.LiveTensors(), "no tensor outlives its step")
	return tr
}

// firstDifference names the first step where two traces differ, "" if none.
func firstDifference(a, b scalerTrace) string {
	for i := range a.Scale {
		switch {
		case i >= len(b.Scale):
			return fmt.Sprintf("step %d: missing", i)
		case a.Scale[i] != b.Scale[i]:
			return fmt.Sprintf("step %d: scale %v vs %v", i, a.Scale[i], b.Scale[i])
		case a.Tracker[i] != b.Tracker[i]:
			return fmt.Sprintf("step %d: growth tracker %d vs %d", i, a.Tracker[i], b.Tracker[i])
		case a.Skipped[i] != b.Skipped[i]:
			return fmt.Sprintf("step %d: skipped %v vs %v", i, a.Skipped[i], b.Skipped[i])
		case fmt.Sprint(a.Unscaled[i]) != fmt.Sprint(b.Unscaled[i]):
			return fmt.Sprintf("step %d: unscaled gradient %v vs %v", i, a.Unscaled[i], b.Unscaled[i])
		}
	}
	return ""
}

// TestGradScalerMatchesTorch: the same gradient sequence, with infs and NaNs
// injected, through torch.amp.GradScaler (the reference environment) and
// loraqa's GradScaler gives the same scale and growth tracker after every
// step, the same skipped steps and the same unscaled gradients, bit for bit.
// The control, a backoff factor of 0.25, must not match.
func TestGradScalerMatchesTorch(t *testing.T) {
	grads, inject := scalerSequence()
	cfg := DefaultGradScalerConfig()
	req := map[string]any{"grads": grads, "inject": inject, "init_scale": cfg.InitScale, "growth_factor": cfg.GrowthFactor,
		"backoff_factor": cfg.BackoffFactor, "growth_interval": cfg.GrowthInterval}
	var ref scalerTrace
	testutil.RunRef(t, "gradscaler_check.py", req, &ref)
	require.Len(t, ref.Scale, len(grads))

	got := runScaler(t, cfg, grads, inject)
	assert.Empty(t, firstDifference(ref, got), "loraqa's GradScaler vs torch %s", ref.Torch)
	// The sequence exercises what it should: three backoffs from 2^16, growth after 2,000 finite steps.
	assert.Equal(t, 8192.0, got.Scale[2])
	assert.Equal(t, []bool{true, true, true, false}, got.Skipped[:4])
	assert.Equal(t, got.Scale[2499]*2, got.Scale[2500], "grown after 2,000 finite steps")
	assert.Equal(t, got.Scale[4600]*2, got.Scale[4601])

	bad := cfg
	bad.BackoffFactor = 0.25
	control := runScaler(t, bad, grads, inject)
	assert.NotEmpty(t, firstDifference(ref, control), "the control (backoff 0.25) must differ from torch")
}

// TestGradScalerStateRoundTrip: the state a checkpoint saves restores the scaler.
func TestGradScalerStateRoundTrip(t *testing.T) {
	s := NewGradScaler(DefaultGradScalerConfig(), gotch.CPU)
	defer s.Drop()
	require.NoError(t, s.SetState(ScalerState{Scale: 1024, GrowthTracker: 17}))
	assert.Equal(t, ScalerState{Scale: 1024, GrowthTracker: 17}, s.State())
	assert.Error(t, s.SetState(ScalerState{Scale: 0}))
}
