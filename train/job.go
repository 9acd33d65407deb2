package train

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// Job is one training run: what `loraqa train` does, as a library call.
type Job struct {
	// Base is the base QA model: a directory or a hub id (Hub says how to
	// fetch it).
	Base string
	Hub  hub.Options
	// Device is where to train (the zero Device: CUDA when available, else
	// the CPU); DType the frozen base's: gotch.Float (also the zero DType),
	// BFloat16, Half (CUDA); Int8 is refused (inference only). torch.ParseDevice
	// and ParseDType read them.
	Device gotch.Device
	DType  gotch.DType
	// Train and Test are the examples to train and evaluate on.
	Train, Test []data.Example
	// Features are the training windows (saved with the adapter, the
	// engine's default for it).
	Features data.FeatureOptions
	// Version2WithNegative is HF's version_2_with_negative (config
	// data.version_2_with_negative): data.Version2Auto ("" too: on when
	// some question of Train or Test has no answer), data.Version2On or
	// data.Version2Off. It decides Options.Postprocess.Version2WithNegative
	// (the evaluations' SQuAD 2.0 post-processing, with
	// Options.Postprocess.NullScoreDiffThreshold); when on, the adapter is
	// saved with its SQuAD 2.0 setting (peft.SQuAD2) and the threshold of
	// the best F1 on Test.
	Version2WithNegative string
	// LoRA is the adapter to inject; InitFrom, when set, is an adapter
	// directory to train further instead (LoRA is then not used).
	LoRA     peft.Config
	InitFrom string
	// Options are the hyperparameters; Options.OutputDir receives the
	// checkpoints, metrics.jsonl and the training curve.
	Options Options
	// Resume is "latest" (the latest checkpoint in OutputDir) or a
	// checkpoint directory; "" starts afresh. With none to resume from the
	// run starts afresh too, and says so.
	Resume string
	// Out is the adapter directory written at the end (peft.Dir).
	Out string
	// TrainConfig is the resolved config to keep beside the adapter and in
	// OutputDir (YAML; optional).
	TrainConfig []byte
	// Observer hears the progress, the evaluations and the checkpoints
	// (metrics.jsonl is written in any case); nil: none.
	Observer Observer
	// Logf receives the run's notices; nil: none.
	Logf func(format string, a ...any)
	// Debug logs the base model's loading in detail.
	Debug bool
}

// errInt8Train is the refusal of an int8 base in training.
var errInt8Train = errors.New("dtype int8 is for inference only (predict, eval, serve, bench infer: the int8 linears have no backward); train in fp32 or bf16, then run the adapter with --dtype int8")

func (j *Job) logf(format string, a ...any) {
	if j.Logf != nil {
		j.Logf(format, a...)
	}
}

// Run trains an adapter: it resolves the base, loads its tokenizer, checks
// the windows against the model, decides SQuAD 2.0 (Version2WithNegative),
// featurizes the examples, injects the adapter (or loads InitFrom), resumes
// if asked, trains, and writes the adapter directory Out whole: weights,
// config, tokenizer files, windows, the SQuAD 2.0 setting, the training
// config and the final metrics. A cancelled ctx saves a checkpoint and
// returns ErrInterrupted.
//
// With SQuAD 2.0 on, the threshold saved with the adapter is best_f1_thresh
// of the official SQuAD 2.0 evaluation of the adapter saved (the best
// checkpoint's with load_best_model_at_end, else the last evaluation), the
// null odds as no-answer probabilities: the null_score_diff_threshold
// with the best F1 on Test. Without an evaluation it is the configured
// Options.Postprocess.NullScoreDiffThreshold.
func Run(ctx context.Context, job Job) (*State, error) {
	dev := torch.DeviceOrAuto(job.Device)
	if job.DType == gotch.Int8 {
		return nil, errInt8Train
	}
	dtype, err := torch.CheckDType(job.DType, dev)
	if err != nil {
		return nil, err
	}
	if warning, _ := torch.CheckPrecision(dtype, dev, torch.HostCPU(), torch.HostRates, true); warning != "" {
		job.logf("%s", warning) // the CLI refuses this unless --force; a library caller hears it
	}
	baseDir, err := hub.Resolve(ctx, job.Base, job.Hub)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	tok, err := data.LoadTokenizer(baseDir)
	if err != nil {
		return nil, err
	}
	mcfg, err := bert.LoadConfig(baseDir)
	if err != nil {
		return nil, err
	}
	v2, note, err := data.ResolveVersion2(job.Version2WithNegative, job.Train, job.Test)
	if err != nil {
		return nil, err
	}
	if note != "" {
		job.logf("%s", note)
	}
	fo := job.Features
	if err := mcfg.CheckInputs(fo.MaxSeqLength, tok.VocabSize()); err != nil {
		return nil, fmt.Errorf("%s: %w", baseDir, err)
	}
	trainFeats, trep, err := data.Featurize(tok, job.Train, fo)
	if err != nil {
		return nil, err
	}
	efo := fo
	efo.NegativeFraction = 1
	evalFeats, erep, err := data.Featurize(tok, job.Test, efo)
	if err != nil {
		return nil, err
	}
	job.logf("data: %d train examples -> %d windows (%d answers inside a window, %d lost to truncation); %d test examples -> %d windows (%d lost)",
		len(job.Train), len(trainFeats), trep.AnswersInWindow, trep.AnswersLost, len(job.Test), len(evalFeats), erep.AnswersLost)
	if trep.AnswersLost > 0 && fo.Mode == data.ModeTruncate {
		job.logf("warning: mode truncate loses %d of %d training answers; data.mode=windows keeps them", trep.AnswersLost, len(job.Train))
	}
	torch.ManualSeed(job.Options.Seed)
	m, err := bert.Load(baseDir, bert.LoadOptions{Device: dev, DType: dtype, Logf: job.Logf, Debug: job.Debug})
	if err != nil {
		return nil, err
	}
	defer m.Drop()
	a, err := job.adapter(m)
	if err != nil {
		return nil, err
	}
	defer a.Drop()
	job.logf("%s", a.TrainableReport())

	opts := job.Options
	opts.Logf = job.Logf
	opts.Postprocess.Version2WithNegative = v2
	tr := &Trainer{Model: m, Adapter: a, Train: trainFeats, Eval: evalFeats, EvalExamples: job.Test, Opt: opts, Observer: job.Observer}
	defer tr.Close()
	if job.Resume != "" {
		from, err := tr.Resume(job.Resume)
		switch {
		case errors.Is(err, ErrNoCheckpoint):
			job.logf("notice: %v; starting from the beginning", err)
		case err != nil:
			return nil, err
		default:
			job.logf("resuming from %s", from)
		}
	}
	if opts.OutputDir != "" && job.TrainConfig != nil {
		if err := atomicfile.Write(filepath.Join(opts.OutputDir, "config.yaml"), job.TrainConfig); err != nil {
			return nil, err
		}
	}
	st, err := tr.Run(ctx)
	if err != nil {
		return st, err
	}
	if opts.OutputDir != "" {
		if err := PlotCurves(opts.OutputDir); err != nil {
			job.logf("warning: training curve plot: %v", err)
		}
	}
	if job.Out == "" {
		return st, nil
	}
	d := peft.NewDir(a)
	d.Tokenizer = baseDir
	d.Windows = &peft.Windows{MaxSeqLength: fo.MaxSeqLength, DocStride: fo.DocStride}
	d.TrainConfig = job.TrainConfig
	if v2 {
		ev := tr.adapterEval()
		d.SQuAD2 = squad2Setting(ev, opts.Postprocess.NullScoreDiffThreshold)
		how := fmt.Sprintf("the configured %s, with no evaluation to tune it on", peft.ThresholdConfig)
		if d.SQuAD2.ThresholdFrom == peft.ThresholdBestF1 {
			how = fmt.Sprintf("%s of the evaluation at step %d: best F1 %.2f on %d questions", peft.ThresholdBestF1, ev.Step, ev.SQuADv2.BestF1, ev.SQuADv2.Total)
		}
		job.logf("SQuAD 2.0: the adapter answers \"\" when the null score beats the best span's by more than %.6g (%s)", d.SQuAD2.NullScoreDiffThreshold, how)
	}
	final := map[string]any{"global_step": st.GlobalStep, "best_f1": st.BestF1}
	if n := len(st.Evals); n > 0 {
		final["final_eval"] = st.Evals[n-1]
	}
	if d.Metrics, err = jsonIndent(final); err != nil {
		return st, err
	}
	if err := d.Write(job.Out); err != nil {
		return st, err
	}
	files := []string{peft.ConfigFile, peft.WeightsFile, peft.WindowsFile}
	if d.SQuAD2 != nil {
		files = append(files, peft.SQuAD2File)
	}
	job.logf("adapter saved to %s (%s, tokenizer files)", job.Out, strings.Join(files, ", "))
	return st, nil
}

// squad2Setting is the SQuAD 2.0 setting saved with an adapter trained
// with version_2_with_negative: the best_f1_thresh of ev (the evaluation of
// the adapter saved), else the configured threshold.
func squad2Setting(ev *EvalRecord, configured float64) *peft.SQuAD2 {
	if ev != nil && ev.SQuADv2 != nil && ev.SQuADv2.HasBest {
		return &peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: ev.SQuADv2.BestF1Thresh, ThresholdFrom: peft.ThresholdBestF1}
	}
	return &peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: configured, ThresholdFrom: peft.ThresholdConfig}
}

// adapter injects a fresh adapter from LoRA, or loads InitFrom to train
// further.
func (j *Job) adapter(m *bert.Model) (*peft.Adapter, error) {
	if dir := j.InitFrom; dir != "" {
		a, err := peft.Load(dir, m)
		if err != nil {
			return nil, fmt.Errorf("lora.init_from: %w", err)
		}
		c := a.Config
		j.logf("lora: starting from the adapter in %s (r %d, alpha %g, dropout %g, targets %v; the other lora keys are not used)",
			dir, c.R, c.LoraAlpha, c.LoraDropout, c.TargetModules)
		return a, nil
	}
	lc := j.LoRA
	if m.Config.ModelType != "distilbert" && lc.TargetRegex == "" && slices.Equal(lc.TargetModules, peft.DefaultTargets("distilbert")) {
		lc.TargetModules = peft.DefaultTargets(m.Config.ModelType)
		j.logf("notice: lora.target_modules q_lin/v_lin are DistilBERT names; using PEFT's default for %s: %v", m.Config.ModelType, lc.TargetModules)
	}
	a, err := peft.Inject(m, lc)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	return a, nil
}
