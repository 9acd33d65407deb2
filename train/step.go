package train

import (
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/torch"
)

// StepStats are one Step's costs, counted in the torch layer: the calls into
// LibTorch (all, and those of the update: unscaling, clipping, AdamW,
// zero-grad) and the times the host waited for the device.
type StepStats struct {
	Calls       int64 `json:"calls"`
	UpdateCalls int64 `json:"update_calls"`
	HostSyncs   int64 `json:"host_syncs"`
}

// Step is one optimizer step on one batch, as Run takes it without gradient
// accumulation: forward with labels, backward, clipping, AdamW at the
// schedule's learning rate, zeroed gradients. It reads nothing back from the
// device (LastLoss does). Bench uses it; Run adds accumulation, NaN handling
// and logging.
func (t *Trainer) Step(b *data.Batch) (StepStats, error) {
	if t.opt == nil {
		if err := t.init(); err != nil {
			return StepStats{}, err
		}
	}
	if t.bench == nil {
		t.bench = newRun(t)
	}
	r := t.bench
	c0, s0 := torch.Calls(), torch.HostSyncs()
	t.forwardBackward(r, b, 1)
	c1 := torch.Calls()
	// A step's loss is kept for LastLoss: update consumes it.
	last := r.stepLoss.MustShallowClone()
	if err := t.update(r, t.schedule().LR(t.state.GlobalStep), 0, 0); err != nil {
		last.MustDrop()
		return StepStats{}, err
	}
	c2 := torch.Calls()
	r.lossSum = replace(r.lossSum, last)
	return StepStats{Calls: c2 - c0, UpdateCalls: c2 - c1, HostSyncs: torch.HostSyncs() - s0}, nil
}

// LastLoss reads the last Step's loss and gradient norm back from the device.
func (t *Trainer) LastLoss() (loss, gradNorm float64) {
	if t.bench == nil || t.bench.norm == nil {
		return 0, 0
	}
	return float64(torch.ToFloat32(t.bench.lossSum)[0]), float64(torch.ToFloat32(t.bench.norm)[0])
}
