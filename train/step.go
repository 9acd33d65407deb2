package train

import (
	"github.com/loraqa/loraqa/data"
)

// Step is one optimizer step on one batch, as Run takes it without gradient
// accumulation: forward with labels, backward, clipping, AdamW at the
// schedule's learning rate, zeroed gradients. It returns the loss and the
// gradient norm. Bench uses it; Run adds accumulation, NaN handling and logging.
func (t *Trainer) Step(b *data.Batch) (loss, gradNorm float64, err error) {
	if t.opt == nil {
		if err := t.init(); err != nil {
			return 0, 0, err
		}
	}
	params := t.Adapter.Params()
	loss, err = t.forwardBackward(b, t.Opt.GradAccum)
	if err != nil {
		return 0, 0, err
	}
	gradNorm = ClipGradNorm(params, t.Opt.MaxGradNorm)
	t.opt.Update(t.schedule().LR(t.state.GlobalStep))
	ZeroGrad(params)
	t.state.GlobalStep++
	return loss, gradNorm, nil
}
