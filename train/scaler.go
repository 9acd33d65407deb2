package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// GradScalerConfig is torch.amp.GradScaler's: the initial scale, the factors
// it grows and backs off by, and how many finite steps in a row it waits to grow.
type GradScalerConfig struct {
	InitScale      float64
	GrowthFactor   float64
	BackoffFactor  float64
	GrowthInterval int64
}

// DefaultGradScalerConfig is GradScaler's default: 2^16, ×2, ×0.5, 2,000 steps.
func DefaultGradScalerConfig() GradScalerConfig {
	return GradScalerConfig{InitScale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// GradScaler is fp16 training's dynamic loss scaling, with the semantics of
// torch.amp.GradScaler: the loss is multiplied by the scale before the
// backward; the gradients are unscaled (and checked for inf/NaN) before
// clipping; a step with an inf or a NaN is skipped and the scale multiplied
// by BackoffFactor; GrowthInterval finite steps in a row multiply it by
// GrowthFactor. Its state lives on the device and is read only for checkpoints.
type GradScaler struct {
	Config  GradScalerConfig
	scale   *ts.Tensor // float32, 0-dim
	tracker *ts.Tensor // int32, 0-dim: finite steps in a row
	found   *ts.Tensor // float32, 0-dim: the last Unscale found an inf or a NaN
}

// NewGradScaler makes a scaler on dev at cfg.InitScale.
func NewGradScaler(cfg GradScalerConfig, dev gotch.Device) *GradScaler {
	return &GradScaler{
		Config:  cfg,
		scale:   torch.Full0(cfg.InitScale, gotch.Float, dev),
		tracker: torch.Full0(0, gotch.Int, dev),
		found:   torch.Full0(0, gotch.Float, dev),
	}
}

// Scale returns loss × scale, a new tensor (the caller drops it).
func (s *GradScaler) Scale(loss *ts.Tensor) *ts.Tensor {
	return loss.MustMul(s.scale, false)
}

// Unscale divides the gradients of params by the scale (multiplies them by
// its float32 reciprocal, as GradScaler.unscale_) and records whether any
// held an inf or a NaN.
func (s *GradScaler) Unscale(params []*ts.Tensor) {
	s.found.MustZero_()
	inv := s.scale.MustTotype(gotch.Double, false).MustReciprocal(true).MustTotype(gotch.Float, true)
	defer inv.MustDrop()
	torch.Unscale(params, s.found, inv)
}

// Found is the last Unscale's finding: a float32 0-dim tensor, 1 when it saw
// an inf or a NaN (the step is to be skipped). It belongs to the scaler.
func (s *GradScaler) Found() *ts.Tensor { return s.found }

// Update moves the scale after a step, from the last Unscale's finding.
func (s *GradScaler) Update() {
	torch.UpdateScale(s.scale, s.tracker, s.found, s.Config.GrowthFactor, s.Config.BackoffFactor, s.Config.GrowthInterval)
}

// ScalerState is a GradScaler's state in trainer_state.json (torch's
// state_dict: scale and _growth_tracker; the factors come from the config).
type ScalerState struct {
	Scale         float64 `json:"scale"`
	GrowthTracker int64   `json:"growth_tracker"`
}

// State reads the scale and the growth tracker back from the device.
func (s *GradScaler) State() ScalerState {
	tr := s.tracker.MustTotype(gotch.Float, false)
	defer tr.MustDrop()
	return ScalerState{Scale: float64(torch.ToFloat32(s.scale)[0]), GrowthTracker: int64(torch.ToFloat32(tr)[0])}
}

// SetState restores a saved state.
func (s *GradScaler) SetState(st ScalerState) error {
	if !(st.Scale > 0) || st.GrowthTracker < 0 {
		return fmt.Errorf("grad_scaler: scale %v and growth_tracker %d: want a positive scale and a tracker ≥ 0", st.Scale, st.GrowthTracker)
	}
	s.scale.MustFill_(ts.FloatScalar(st.Scale))
	s.tracker.MustFill_(ts.IntScalar(st.GrowthTracker))
	return nil
}

// Drop frees the scaler's tensors.
func (s *GradScaler) Drop() {
	for _, t := range []*ts.Tensor{s.scale, s.tracker, s.found} {
		t.MustDrop()
	}
}
