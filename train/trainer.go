// Package train is the training loop: HF Trainer's AdamW groups, linear schedule
// with warmup, gradient clipping and accumulation, an evaluation (loss, SQuAD
// exact match and F1 over all windows) every epoch, checkpoints with exact
// resume, the best adapter kept, early stopping, and metrics.jsonl.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/qa"
	"github.com/loraqa/loraqa/torch"
)

// Options are the training hyperparameters and bookkeeping settings.
type Options struct {
	Epochs         int
	MaxSteps       int64 // > 0 stops after this many optimizer steps
	BatchSize      int
	EvalBatchSize  int
	LR             float64
	WeightDecay    float64
	WarmupRatio    float64
	WarmupSteps    int64
	Scheduler      string // linear or constant
	MaxGradNorm    float64
	GradAccum      int
	Seed           int64
	LogEvery       int64
	NaNPolicy      string // stop or skip
	BucketBatches  int    // > 1 groups windows of similar length (less padding)
	OutputDir      string // checkpoints, metrics.jsonl, plot
	SaveTotalLimit int
	LoadBestAtEnd  bool
	EarlyStopping  int // patience in evaluations; 0 = off
	Postprocess    data.PostprocessOptions
	Logf           func(format string, a ...any)
	Threads        int // LibTorch intra-op threads; 0 = the number of CPUs
	// Optim is auto (adamw_torch_fused on CUDA, as HF's default is with
	// torch ≥ 2.8; adamw_torch elsewhere, whose numbers the CPU keeps),
	// adamw_torch (torch.optim.AdamW in multi-tensor ops), adamw_torch_fused
	// (its fused kernel: CUDA, or the CPU from LibTorch 2.4) or adamw_hf
	// (transformers 4.x's own AdamW; see AdamWConfig.HF).
	Optim string
	// TF32 lets CUDA run float32 matmuls in TF32 (train.tf32); off by
	// default, as in PyTorch.
	TF32 bool
	// Deterministic makes CUDA pick deterministic algorithms, with cuBLAS's
	// fixed workspace (train.deterministic): a resumed run then equals an
	// uninterrupted one bit for bit on a GPU too. Off by default.
	Deterministic bool
	// FastDropout draws the CPU's dropout masks with LibTorch's own generator
	// (train.fast_dropout; torch.SetLibTorchDraws): faster on Intel CPUs, but
	// not PyTorch's masks for a seed, nor the same on Intel and AMD CPUs. Off
	// by default: a seed then draws PyTorch's masks on any CPU.
	FastDropout bool
	// MetricForBest picks the best checkpoint: f1 (default), exact_match or
	// loss (HF's default when metric_for_best_model is unset).
	MetricForBest string
	// EvalEveryEpoch false evaluates only after the last epoch.
	EvalEveryEpoch bool
}

// DefaultOptions is the reference recipe: lr 2e-5, batch 8, 5 epochs, weight
// decay 0.01, linear schedule, no warmup, clipping at 1.0.
func DefaultOptions() Options {
	return Options{Epochs: 5, BatchSize: 8, EvalBatchSize: 32, LR: 2e-5, WeightDecay: 0.01, Scheduler: "linear",
		MaxGradNorm: 1, GradAccum: 1, Seed: 42, LogEvery: 10, NaNPolicy: "stop", SaveTotalLimit: 2,
		LoadBestAtEnd: true, Postprocess: data.DefaultPostprocessOptions(), Optim: "auto", MetricForBest: "f1", EvalEveryEpoch: true}
}

// ErrInterrupted is returned when the context ends training early; a checkpoint
// was saved first.
var ErrInterrupted = errors.New("training interrupted; a checkpoint was saved (Job.Resume \"latest\" continues from it)")

// Trainer trains an adapter on featurized data.
type Trainer struct {
	Model        *bert.Model
	Adapter      *peft.Adapter
	Train        []data.Feature
	EvalExamples []data.Example
	Eval         []data.Feature
	Opt          Options
	// Observer hears the run (a progress bar, say); metrics.jsonl in
	// Opt.OutputDir is written in any case.
	Observer Observer

	stopAfterEpochs int  // > 0: stop (as if interrupted) after this many epochs (tests)
	loadedBest      bool // load_best_model_at_end put the best checkpoint's adapter back
	obs             Observer
	opt             *AdamW
	scaler          *GradScaler // fp16: dynamic loss scaling
	state           State
	bench           *run // Step's run state
	batcher         *data.Batcher
	restoreDraws    func() // puts the dropout draws back (Close)
}

// EvalResult is one evaluation. With SQuAD 2.0 post-processing
// (Options.Postprocess.Version2WithNegative) ExactMatch, F1 and N are the
// official SQuAD 2.0 evaluation's exact, f1 and total, as HF's run_qa
// reports them, and SQuADv2 holds all its numbers, the null odds' best
// thresholds included.
type EvalResult struct {
	Loss       float64 `json:"eval_loss"`
	ExactMatch float64 `json:"exact_match"`
	F1         float64 `json:"f1"`
	N          int     `json:"n"`
	// SQuADv2 is the official SQuAD 2.0 evaluation (its keys: exact, f1,
	// total, HasAns_*, NoAns_*, best_exact, best_exact_thresh, best_f1,
	// best_f1_thresh); nil without SQuAD 2.0 post-processing.
	SQuADv2 *data.MetricsV2 `json:"squad_v2,omitempty"`
}

func (t *Trainer) logf(format string, a ...any) {
	if t.Opt.Logf != nil {
		t.Opt.Logf(format, a...)
	}
}

// Metric is the evaluation's value of metric_for_best_model.
func (e EvalResult) Metric(name string) float64 {
	switch name {
	case "loss", "eval_loss":
		return e.Loss
	case "exact_match":
		return e.ExactMatch
	}
	return e.F1
}

// stepsPerEpoch is HF Trainer's ceil(batches / gradient_accumulation_steps):
// the last, shorter accumulation of an epoch is a step of its own.
func (t *Trainer) stepsPerEpoch() int64 {
	return max64(1, int64(math.Ceil(float64(t.batcher.Len())/float64(t.Opt.GradAccum))))
}

// TotalSteps is the number of optimizer steps of the whole run: max_steps
// when set (it overrides the epochs, as in HF), else epochs × steps per epoch.
func (t *Trainer) TotalSteps() int64 {
	if t.Opt.MaxSteps > 0 {
		return t.Opt.MaxSteps
	}
	return t.stepsPerEpoch() * int64(t.Opt.Epochs)
}

// NumEpochs is the number of epochs the run goes through: with max_steps,
// ceil(max_steps / steps per epoch), as HF.
func (t *Trainer) NumEpochs() int {
	if t.Opt.MaxSteps > 0 {
		per := t.stepsPerEpoch()
		return int((t.Opt.MaxSteps + per - 1) / per)
	}
	return t.Opt.Epochs
}

func (t *Trainer) schedule() LinearSchedule {
	total := t.TotalSteps()
	warm := t.Opt.WarmupSteps
	if warm == 0 && t.Opt.WarmupRatio > 0 {
		warm = int64(math.Ceil(t.Opt.WarmupRatio * float64(total)))
	}
	return LinearSchedule{Base: t.Opt.LR, Warmup: warm, Total: total, Constant: t.Opt.Scheduler == "constant"}
}

func (t *Trainer) init() error {
	o := &t.Opt
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.GradAccum <= 0 {
		o.GradAccum = 1
	}
	if o.EvalBatchSize <= 0 {
		o.EvalBatchSize = o.BatchSize
	}
	if len(t.Train) == 0 {
		return errors.New("no training features: the training split is empty")
	}
	if t.Model.Int8() {
		return errInt8Train
	}
	if t.Model.Packed() {
		return errors.New("the base's linears are packed for inference (bert.Model.Pack) and have no backward; train on an unpacked model")
	}
	b, err := data.NewBatcher(t.Train, data.BatchOptions{BatchSize: o.BatchSize, Shuffle: true, Seed: uint64(o.Seed), BucketBatches: o.BucketBatches, PadID: t.Model.Config.PadTokenID})
	if err != nil {
		return err
	}
	t.batcher = b
	if t.opt == nil {
		switch o.Optim {
		case "", "auto", "adamw_torch", "adamw_hf", "adamw_torch_fused":
		default:
			return fmt.Errorf("train.optim %q: want auto, adamw_torch, adamw_torch_fused or adamw_hf", o.Optim)
		}
		switch o.MetricForBest {
		case "", "f1", "exact_match", "loss", "eval_loss":
		default:
			return fmt.Errorf("train.metric_for_best_model %q: want f1, exact_match or loss", o.MetricForBest)
		}
		if o.Optim == "adamw_torch_fused" && !t.Model.Device.IsCuda() && !torch.LibTorchAtLeast(2, 4) {
			return fmt.Errorf("train.optim adamw_torch_fused: LibTorch %s has the fused AdamW for CUDA only (for the CPU from 2.4); use adamw_torch", torch.LibTorchVersion())
		}
		c := DefaultAdamWConfig()
		fused := o.Optim == "adamw_torch_fused" || ((o.Optim == "" || o.Optim == "auto") && t.Model.Device.IsCuda())
		c.WeightDecay, c.HF, c.Fused = o.WeightDecay, o.Optim == "adamw_hf", fused
		t.opt = NewAdamW(t.Adapter.Params(), c)
		if t.Model.DType == gotch.Half && t.scaler == nil {
			t.scaler = NewGradScaler(DefaultGradScalerConfig(), t.Model.Device)
		}
	}
	if t.restoreDraws == nil {
		t.restoreDraws = torch.SetLibTorchDraws(o.FastDropout)
	}
	if t.Model.Device.IsCuda() {
		if err := torch.SetCUDAMath(o.TF32, o.Deterministic); err != nil {
			return fmt.Errorf("train.tf32/train.deterministic: %w", err)
		}
	}
	return nil
}

// Close frees the optimizer state.
func (t *Trainer) Close() {
	if t.opt != nil {
		t.opt.Drop()
		t.opt = nil
	}
	if t.scaler != nil {
		t.scaler.Drop()
		t.scaler = nil
	}
	t.bench.drop()
	t.bench = nil
	if t.restoreDraws != nil {
		t.restoreDraws()
		t.restoreDraws = nil
	}
	if t.obs != nil {
		t.obs.Close()
		t.obs = nil
	}
}

// Run trains from the current state (fresh, or as restored by Resume) to the end.
//
// All LibTorch work of the run happens on one OS thread with a fixed intra-op
// thread count: OpenMP keeps the thread count per OS thread, and reductions
// split by it, so a goroutine that hopped threads would not be bit-reproducible.
//
// A LibTorch failure (out of memory, a bad index) ends the run with an error
// that wraps the *torch.Error and names the checkpoint that is kept.
func (t *Trainer) Run(ctx context.Context) (st *State, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		if r := recover(); r != nil {
			le := torch.AsError(r)
			if le == nil {
				panic(r)
			}
			st, err = nil, t.failed(le)
		}
	}()
	r, err := t.begin()
	if err != nil {
		return nil, err
	}
	defer r.drop()
	for epoch := t.state.Epoch; epoch < r.epochs && t.state.GlobalStep < r.sched.Total; epoch++ {
		if st, err := t.runEpoch(ctx, r, epoch); err != nil {
			return st, err
		}
		st, stop, err := t.endEpoch(ctx, r, epoch)
		if err != nil {
			return st, err
		}
		if stop {
			break
		}
	}
	if err := t.loadBestAtEnd(); err != nil {
		return nil, err
	}
	return &t.state, nil
}

// run is what one Run call carries from step to step. The losses and the
// gradient norm stay on the device until a logging step reads them.
type run struct {
	sched   LinearSchedule
	epochs  int
	params  []peft.Param
	tensors []*ts.Tensor
	// lossSum is the training loss summed (float64) since the last "train"
	// metrics line, over lossN batches; stepLoss this step's, over stepN.
	lossSum, stepLoss *ts.Tensor
	lossN, stepN      int64
	norm              *ts.Tensor // the last step's gradient norm
	shown             float64    // the last loss read, for the progress bar
	// pending are the fused optimizer's steps whose inf/NaN flag is still on
	// the device; the next read acts on them.
	pending []pendingStep
}

// pendingStep is a step whose finite check has not been read yet.
type pendingStep struct {
	step         int64
	epoch, batch int
	found        *ts.Tensor
}

func newRun(t *Trainer) *run {
	params := t.Adapter.Params()
	return &run{params: params, tensors: tensorsOf(params), lossSum: torch.Full0(0, gotch.Double, t.Model.Device)}
}

func (r *run) drop() {
	if r == nil {
		return
	}
	for _, x := range []*ts.Tensor{r.lossSum, r.stepLoss, r.norm} {
		if x != nil {
			x.MustDrop()
		}
	}
	for _, p := range r.pending {
		p.found.MustDrop()
	}
	r.lossSum, r.stepLoss, r.norm, r.pending = nil, nil, nil, nil
}

// begin prepares a Run: options and batcher (init), threads, schedule,
// and the observers (metrics.jsonl truncated to the resumed step).
func (t *Trainer) begin() (*run, error) {
	if err := t.init(); err != nil {
		return nil, err
	}
	torch.SetThreads(t.Opt.Threads)
	r := newRun(t)
	r.sched, r.epochs = t.schedule(), t.NumEpochs()
	if t.obs != nil {
		t.obs.Close()
	}
	var metrics Observer
	if t.Opt.OutputDir != "" {
		metrics = &metricsLog{dir: t.Opt.OutputDir}
	}
	t.obs = Observers(metrics, t.Observer)
	if err := t.obs.Start(t.state.GlobalStep, r.sched.Total); err != nil {
		return nil, err
	}
	t.logf("training: %d windows, %d batches/epoch, %d epochs, %d optimizer steps; %s",
		len(t.Train), t.batcher.Len(), r.epochs, r.sched.Total, t.Adapter.TrainableReport())
	return r, nil
}

// runEpoch trains over epoch's batches from where the state stands, one
// optimizer step per accumulation. A cancelled context between accumulations
// saves a checkpoint and returns ErrInterrupted; any other error ends the run.
func (t *Trainer) runEpoch(ctx context.Context, r *run, epoch int) (*State, error) {
	plan := t.batcher.Plan(epoch)
	// HF divides each loss by the number of batches in its accumulation:
	// gradient_accumulation_steps, or the remainder for the epoch's last step.
	tail := len(plan) % t.Opt.GradAccum
	if tail == 0 {
		tail = t.Opt.GradAccum
	}
	accum := 0
	for bi := t.state.BatchInEpoch; bi < len(plan); bi++ {
		if err := ctx.Err(); err != nil && accum == 0 {
			return t.interrupt(epoch, bi)
		}
		div := t.Opt.GradAccum
		if bi >= len(plan)-tail {
			div = tail
		}
		t.accumulate(r, plan[bi], bi, div)
		accum++
		if accum < t.Opt.GradAccum && bi < len(plan)-1 {
			continue
		}
		accum = 0
		if err := t.step(r, epoch, bi, float64(bi+1)/float64(len(plan))); err != nil {
			return nil, err
		}
		if t.state.GlobalStep >= r.sched.Total {
			break
		}
	}
	if err := t.settle(r); err != nil {
		return nil, err
	}
	t.obs.EpochEnd(epoch)
	t.state.Epoch, t.state.BatchInEpoch = epoch+1, 0
	return nil, nil
}

// accumulate runs batch bi (the batcher's indices idx) forward and backward,
// adding loss/div's gradient to the accumulated ones. Dropout is reseeded
// from (seed, step, batch) first, so a resumed run draws the same masks.
func (t *Trainer) accumulate(r *run, idx []int, bi, div int) {
	torch.ManualSeed(t.Opt.Seed*1_000_003 + t.state.GlobalStep*1009 + int64(bi))
	t.forwardBackward(r, t.batcher.Make(idx), div)
}

// step ends an accumulation (update), then logs: a logging step reads the
// losses and the gradient norm back from the device, the others read
// nothing. at is how far into the epoch the step is.
func (t *Trainer) step(r *run, epoch, bi int, at float64) error {
	lr := r.sched.LR(t.state.GlobalStep)
	if err := t.update(r, lr, epoch, bi); err != nil {
		return err
	}
	s := Step{Step: t.state.GlobalStep, Total: r.sched.Total, Epoch: epoch, At: float64(epoch) + at, LR: lr}
	if t.Opt.LogEvery > 0 && t.state.GlobalStep%t.Opt.LogEvery == 0 && r.lossN > 0 {
		if err := t.settle(r); err != nil {
			return err
		}
		mean := r.lossSum.MustDivScalar(ts.FloatScalar(float64(r.lossN)), false)
		norm64 := r.norm.MustTotype(gotch.Double, false)
		both := ts.MustStack([]*ts.Tensor{mean, norm64}, 0)
		vals := torch.ToFloat32(both) // the step's one read
		for _, x := range []*ts.Tensor{mean, norm64, both} {
			x.MustDrop()
		}
		s.Logged, s.GradNorm = true, float64(vals[1])
		r.shown = float64(vals[0])
		r.lossSum.MustZero_()
		r.lossN = 0
	}
	s.Loss = r.shown
	t.obs.Step(s)
	return nil
}

// update ends an accumulation without reading the device: with fp16 the
// gradients are unscaled; they are clipped; AdamW steps at lr unless the
// loss or the gradients are not finite; the gradients are zeroed.
//
// The NaN/inf check stays on the device. The multi-tensor AdamW learns
// the verdict inside its one call (free on the CPU) and a bad step is
// handled at once: nan_policy stop returns the error, skip logs it and the
// step does not count. The fused AdamW skips on the device and the next read
// (a logging step, the epoch's end) acts on it. With fp16, an overflow of
// the scaled gradients is GradScaler's business: the step is skipped (and
// counted, as in HF) and the scale backs off; only a non-finite loss is a
// NaN-policy event.
func (t *Trainer) update(r *run, lr float64, epoch, bi int) error {
	var found, skip *ts.Tensor
	if t.scaler != nil {
		t.scaler.Unscale(r.tensors)
		r.norm = replace(r.norm, nil)
		r.norm, _ = torch.ClipGradNorm(r.tensors, t.Opt.MaxGradNorm, nil, false)
		found = r.stepLoss.MustIsfinite(false).MustLogicalNot(true)
		skip = t.scaler.Found().MustGt(ts.FloatScalar(0), false).MustLogicalOr(found, true)
	} else {
		r.norm = replace(r.norm, nil)
		r.norm, found = torch.ClipGradNorm(r.tensors, t.Opt.MaxGradNorm, []*ts.Tensor{r.stepLoss}, true)
		skip = found.MustShallowClone()
	}
	skipped := t.opt.update(lr, skip)
	skip.MustDrop()
	ZeroGrad(r.params)
	if t.scaler != nil {
		t.scaler.Update()
	}
	if t.opt.Config.Fused {
		r.pending = append(r.pending, pendingStep{step: t.state.GlobalStep + 1, epoch: epoch, batch: bi, found: found})
		found = nil
	} else if found != nil {
		defer found.MustDrop()
	}
	if skipped && (t.scaler == nil || torch.ToFloat32(found)[0] != 0) {
		return t.nonFinite(r, t.state.GlobalStep+1, epoch, bi)
	}
	if !skipped || t.scaler != nil {
		t.state.GlobalStep++
		if !skipped {
			r.lossSum.MustAdd_(r.stepLoss)
			r.lossN += r.stepN
		}
	}
	r.stepLoss = replace(r.stepLoss, nil)
	r.stepN = 0
	return nil
}

// replace drops old and returns new.
func replace(old, new *ts.Tensor) *ts.Tensor {
	if old != nil {
		old.MustDrop()
	}
	return new
}

// nonFinite handles a step whose loss or gradient norm was NaN or Inf (it
// reads them, once): with nan_policy stop it returns the error that ends the
// run, naming the last good checkpoint; with skip it logs a warning and
// training goes on.
func (t *Trainer) nonFinite(r *run, step int64, epoch, bi int) error {
	what, val := "gradient norm", math.NaN()
	if r.stepLoss != nil {
		if l := float64(torch.ToFloat32(r.stepLoss)[0]); !finite(l) {
			what, val = "loss", l
		}
	}
	if what != "loss" && r.norm != nil {
		val = float64(torch.ToFloat32(r.norm)[0])
	}
	r.stepLoss = replace(r.stepLoss, nil)
	r.stepN = 0
	if t.Opt.NaNPolicy != "skip" {
		return fmt.Errorf("%s is %v at step %d (epoch %d, batch %d): stopping; the last good checkpoint is %q (lower the learning rate, or set train.nan_policy=skip)",
			what, val, step, epoch+1, bi+1, t.state.LastCheckpoint)
	}
	t.logf("warning: %s is %v at step %d: step skipped (nan_policy=skip)", what, val, step)
	return nil
}

// settle reads the fused optimizer's pending inf/NaN flags (one read) and
// acts on the first bad step as nonFinite does.
func (t *Trainer) settle(r *run) error {
	if len(r.pending) == 0 {
		return nil
	}
	flags := make([]*ts.Tensor, len(r.pending))
	for i, p := range r.pending {
		flags[i] = p.found.MustTotype(gotch.Float, false).MustReshape([]int64{1}, true)
	}
	vals := torch.ToFloat32(ts.MustCat(flags, 0))
	for _, f := range flags {
		f.MustDrop()
	}
	pending := r.pending
	r.pending = nil
	defer func() {
		for _, p := range pending {
			p.found.MustDrop()
		}
	}()
	for i, v := range vals {
		if v == 0 {
			continue
		}
		p := pending[i]
		stop := fmt.Errorf("the loss or the gradient norm is not finite at step %d (epoch %d, batch %d); the step was skipped on the device: stopping; the last good checkpoint is %q (lower the learning rate, or set train.nan_policy=skip)",
			p.step, p.epoch+1, p.batch+1, t.state.LastCheckpoint)
		if t.Opt.NaNPolicy != "skip" {
			return stop
		}
		t.logf("warning: the loss or the gradient norm is not finite at step %d: step skipped on the device (nan_policy=skip)", p.step)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// endEpoch evaluates after the epoch (every epoch, or only after the last one
// when EvalEveryEpoch is off) and saves a checkpoint. stop reports early
// stopping; a non-nil error (ErrInterrupted included, with the state) ends Run.
func (t *Trainer) endEpoch(ctx context.Context, r *run, epoch int) (st *State, stop bool, err error) {
	last := epoch+1 >= r.epochs || t.state.GlobalStep >= r.sched.Total
	if !t.Opt.EvalEveryEpoch && !last {
		return nil, false, t.checkpoint()
	}
	if err := t.evaluateEpoch(ctx, r, epoch); err != nil {
		if ctx.Err() != nil {
			// Interrupted during the evaluation: keep the epoch's training.
			st, err := t.interrupt(epoch+1, 0)
			return st, false, err
		}
		return nil, false, err
	}
	if err := t.checkpoint(); err != nil {
		return nil, false, err
	}
	if t.Opt.EarlyStopping > 0 && t.state.EvalsSinceBest >= t.Opt.EarlyStopping {
		t.logf("early stopping: %s has not improved for %d evaluations", t.Opt.MetricForBest, t.state.EvalsSinceBest)
		return nil, true, nil
	}
	if t.stopAfterEpochs > 0 && epoch+1 >= t.stopAfterEpochs && epoch+1 < r.epochs {
		return &t.state, false, ErrInterrupted
	}
	return nil, false, nil
}

// evaluateEpoch evaluates the adapter after epoch and records the result in
// the state (best checkpoint tracking), metrics.jsonl and the log.
func (t *Trainer) evaluateEpoch(ctx context.Context, r *run, epoch int) error {
	ev, err := t.Evaluate(ctx)
	if err != nil {
		return err
	}
	t.state.recordEval(t.state.GlobalStep, epoch+1, ev, t.Opt.MetricForBest)
	t.obs.Eval(t.state.GlobalStep, epoch, ev)
	t.logf("epoch %d/%d: eval loss %.4f, exact match %.2f, F1 %.2f (n=%d)", epoch+1, r.epochs, ev.Loss, ev.ExactMatch, ev.F1, ev.N)
	if m := ev.SQuADv2; m != nil {
		t.logf("epoch %d/%d: SQuAD 2.0: answerable F1 %.2f (n=%d), unanswerable F1 %.2f (n=%d), best F1 %.2f at null_score_diff_threshold %.4g",
			epoch+1, r.epochs, m.HasAnsF1, m.HasAnsTotal, m.NoAnsF1, m.NoAnsTotal, m.BestF1, m.BestF1Thresh)
	}
	return nil
}

// adapterEval is the evaluation of the adapter the trainer holds after Run:
// the best checkpoint's when load_best_model_at_end put it back, else the
// last one; nil when there was none.
func (t *Trainer) adapterEval() *EvalRecord {
	evals := t.state.Evals
	if len(evals) == 0 {
		return nil
	}
	if t.loadedBest {
		name := filepath.Base(t.state.BestCheckpoint)
		for i := len(evals) - 1; i >= 0; i-- {
			if checkpointName(evals[i].Step) == name {
				return &evals[i]
			}
		}
	}
	return &evals[len(evals)-1]
}

// loadBestAtEnd puts the best checkpoint's adapter back (load_best_model_at_end)
// when it is not the last one.
func (t *Trainer) loadBestAtEnd() error {
	if !t.Opt.LoadBestAtEnd || t.Opt.OutputDir == "" || t.state.BestCheckpoint == "" || t.state.BestCheckpoint == t.state.LastCheckpoint {
		return nil
	}
	if err := t.loadAdapterFrom(t.state.BestCheckpoint); err != nil {
		return fmt.Errorf("load best checkpoint: %w", err)
	}
	t.loadedBest = true
	t.logf("loaded the best adapter (%s %.4f, F1 %.2f) from %s", t.Opt.MetricForBest, t.state.BestMetric, t.state.BestF1, t.state.BestCheckpoint)
	return nil
}

// failed says where a LibTorch failure stopped training and which checkpoint is kept.
func (t *Trainer) failed(le *torch.Error) error {
	kept := "no checkpoint had been written yet"
	if t.state.LastCheckpoint != "" {
		kept = fmt.Sprintf("the last checkpoint, %s, is kept (resuming from it continues the run)", t.state.LastCheckpoint)
	}
	return fmt.Errorf("training stopped at step %d (epoch %d): %w; %s", t.state.GlobalStep+1, t.state.Epoch+1, le, kept)
}

func (t *Trainer) interrupt(epoch, batch int) (*State, error) {
	t.state.Epoch, t.state.BatchInEpoch = epoch, batch
	if err := t.checkpoint(); err != nil {
		return nil, fmt.Errorf("interrupted, and the checkpoint failed: %w", err)
	}
	return &t.state, ErrInterrupted
}

// forwardBackward runs one batch in train mode, backpropagates loss/accum
// (scaled, with fp16) and adds the loss to the step's, on the device. Every
// other tensor it makes is dropped before it returns.
func (t *Trainer) forwardBackward(r *run, b *data.Batch, accum int) {
	in := qa.ToDevice(b, t.Model.Device, true)
	defer in.Drop()
	out := t.Model.Forward(in, true)
	defer out.Drop()
	if r.stepLoss == nil {
		r.stepLoss = out.Loss.MustDetach(false).MustTotype(gotch.Double, true)
	} else {
		r.stepLoss.MustAdd_(out.Loss)
	}
	r.stepN++
	l := out.Loss
	if accum > 1 {
		l = out.Loss.MustDivScalar(ts.FloatScalar(float64(accum)), false)
		defer l.MustDrop()
	}
	if t.scaler != nil {
		l = t.scaler.Scale(l)
		defer l.MustDrop()
	}
	l.MustBackward()
}

// Evaluate runs the model in eval mode over the evaluation windows: mean loss,
// and SQuAD exact match and F1 of the best span over all windows of each
// example; with Opt.Postprocess.Version2WithNegative, the answers are HF's
// SQuAD 2.0 ones (the null answer "" competing) and the scores the official
// SQuAD 2.0 evaluation's, the null odds its no-answer probabilities.
func (t *Trainer) Evaluate(ctx context.Context) (EvalResult, error) {
	if len(t.Eval) == 0 {
		return EvalResult{}, nil
	}
	starts, ends, loss, err := qa.Logits(ctx, t.Model, t.Eval, t.Opt.EvalBatchSize, true)
	if err != nil {
		return EvalResult{}, err
	}
	preds, err := data.Postprocess(t.EvalExamples, t.Eval, starts, ends, t.Opt.Postprocess)
	if err != nil {
		return EvalResult{}, err
	}
	if t.Opt.Postprocess.Version2WithNegative {
		m := data.EvaluateV2(preds, t.EvalExamples)
		return EvalResult{Loss: loss, ExactMatch: m.Exact, F1: m.F1, N: m.Total, SQuADv2: &m}, nil
	}
	m := data.Evaluate(preds, t.EvalExamples)
	return EvalResult{Loss: loss, ExactMatch: m.ExactMatch, F1: m.F1, N: m.N}, nil
}
