package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

func init() {
	register("train", "fine-tune a LoRA adapter (config file, env, --set)", runTrain)
}

func runTrain(ctx context.Context, args []string) error {
	fs := newFlags("train", "[--config F] [--set k=v ...] [--resume latest|DIR]")
	var cf configFlags
	cf.register(fs)
	resume := fs.String("resume", "", "resume from the latest checkpoint in output_dir (latest) or from a checkpoint directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if err := checkWritable(cfg.OutputDir, cfg.FineTunedAdapterPath); err != nil {
		return err
	}
	dev, err := torch.ParseDevice(cfg.Device)
	if err != nil {
		return err
	}
	dtype, err := torch.ParseDType(cfg.Train.DType, dev)
	if err != nil {
		return fmt.Errorf("train.dtype: %w", err)
	}
	baseDir, err := hub.Resolve(ctx, cfg.BaseQAModel, hubOptions())
	if err != nil {
		return fmt.Errorf("base_qa_model: %w", err)
	}
	tok, err := data.LoadTokenizer(baseDir)
	if err != nil {
		return err
	}
	mcfg, err := bert.LoadConfig(baseDir)
	if err != nil {
		return err
	}
	if err := mcfg.CheckInputs(cfg.Data.MaxSeqLength, tok.VocabSize()); err != nil {
		return fmt.Errorf("%s: %w", baseDir, err)
	}
	trainEx, testEx, err := loadSplits(cfg)
	if err != nil {
		return err
	}
	fo := featureOptions(cfg.Data, cfg.Seed)
	trainFeats, trep, err := data.Featurize(tok, trainEx, fo)
	if err != nil {
		return err
	}
	efo := fo
	efo.NegativeFraction = 1
	evalFeats, erep, err := data.Featurize(tok, testEx, efo)
	if err != nil {
		return err
	}
	logf("data: %d train examples -> %d windows (%d answers inside a window, %d lost to truncation); %d test examples -> %d windows (%d lost)",
		len(trainEx), len(trainFeats), trep.AnswersInWindow, trep.AnswersLost, len(testEx), len(evalFeats), erep.AnswersLost)
	if trep.AnswersLost > 0 && fo.Mode == data.ModeTruncate {
		logf("warning: mode truncate loses %d of %d training answers; data.mode=windows keeps them", trep.AnswersLost, len(trainEx))
	}
	torch.ManualSeed(cfg.Seed)
	m, err := bert.Load(baseDir, bert.LoadOptions{Device: dev, DType: dtype, Logf: logf, Debug: cfg.LogLevel == "debug"})
	if err != nil {
		return err
	}
	defer m.Drop()
	a, err := newAdapter(cfg, m)
	if err != nil {
		return err
	}
	defer a.Drop()
	logf("%s", a.TrainableReport())

	opts := trainOptions(cfg)
	tr := &train.Trainer{Model: m, Adapter: a, Train: trainFeats, Eval: evalFeats, EvalExamples: testEx, Opt: opts}
	defer tr.Close()
	if *resume != "" {
		from, err := tr.Resume(*resume)
		switch {
		case errors.Is(err, train.ErrNoCheckpoint):
			logf("notice: %v; starting from the beginning", err)
		case err != nil:
			return err
		default:
			logf("resuming from %s", from)
		}
	}
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return err
	}
	if y, err := cfg.YAML(); err == nil {
		_ = atomicfile.Write(filepath.Join(cfg.OutputDir, "config.yaml"), y)
	}
	st, err := tr.Run(ctx)
	if errors.Is(err, train.ErrInterrupted) {
		logf("%v", err)
		return err
	}
	if err != nil {
		return err
	}
	if err := train.PlotCurves(cfg.OutputDir); err != nil {
		logf("warning: training curve plot: %v", err)
	}
	return saveAdapter(cfg, a, baseDir, st)
}

// newAdapter injects a fresh adapter from the lora section, or loads the
// adapter named by lora.init_from to train further.
func newAdapter(cfg *config.Config, m *bert.Model) (*peft.Adapter, error) {
	if dir := cfg.LoRA.InitFrom; dir != "" {
		a, err := peft.Load(dir, m)
		if err != nil {
			return nil, fmt.Errorf("lora.init_from: %w", err)
		}
		c := a.Config
		logf("lora: starting from the adapter in %s (r %d, alpha %g, dropout %g, targets %v; the other lora keys are not used)",
			dir, c.R, c.LoraAlpha, c.LoraDropout, c.TargetModules)
		return a, nil
	}
	lc := loraConfig(cfg.LoRA, cfg.BaseQAModel)
	if m.Config.ModelType != "distilbert" && lc.TargetRegex == "" && slices.Equal(lc.TargetModules, peft.DefaultTargets("distilbert")) {
		lc.TargetModules = peft.DefaultTargets(m.Config.ModelType)
		logf("notice: lora.target_modules q_lin/v_lin are DistilBERT names; using PEFT's default for %s: %v", m.Config.ModelType, lc.TargetModules)
	}
	a, err := peft.Inject(m, lc)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	return a, nil
}

func trainOptions(cfg *config.Config) train.Options {
	t := cfg.Train
	o := train.DefaultOptions()
	o.Epochs, o.MaxSteps, o.BatchSize, o.EvalBatchSize = t.Epochs, int64(t.MaxSteps), t.BatchSize, t.EvalBatchSize
	o.LR, o.WeightDecay, o.WarmupRatio, o.WarmupSteps = t.LearningRate, t.WeightDecay, t.WarmupRatio, int64(t.WarmupSteps)
	o.Scheduler, o.MaxGradNorm, o.GradAccum = t.LRScheduler, t.MaxGradNorm, t.GradientAccumulationSteps
	o.Seed, o.LogEvery, o.NaNPolicy = cfg.Seed, int64(t.LoggingSteps), t.NaNPolicy
	o.OutputDir, o.SaveTotalLimit, o.LoadBestAtEnd, o.EarlyStopping = cfg.OutputDir, t.SaveTotalLimit, t.LoadBestModelAtEnd, t.EarlyStoppingPatience
	o.Postprocess = postOptions(cfg.Data)
	o.Threads = t.Threads
	o.Optim, o.MetricForBest, o.EvalEveryEpoch = t.Optim, t.MetricForBestModel, t.EvalEveryEpoch
	o.TF32, o.Deterministic = t.TF32, t.Deterministic
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	o.Progress = os.Stderr
	o.Logf = logf
	return o
}

// loadSplits reads data.input and splits it, or reads train_file and test_file.
func loadSplits(cfg *config.Config) (trainEx, testEx []data.Example, err error) {
	d := cfg.Data
	read := func(path string) ([]data.Example, error) {
		rr, err := data.ReadFile(path, d.Format)
		if err != nil {
			return nil, err
		}
		return data.BuildDataset(rr, data.BuildOptions{Separator: d.Separator}), nil
	}
	if d.Input != "" {
		all, err := read(d.Input)
		if err != nil {
			return nil, nil, err
		}
		return data.Split(all, d.TestFraction, uint64(cfg.Seed))
	}
	if d.TrainFile == "" {
		return nil, nil, fmt.Errorf("config: set data.input (one file to split) or data.train_file (and data.test_file)")
	}
	if trainEx, err = read(d.TrainFile); err != nil {
		return nil, nil, err
	}
	if d.TestFile != "" {
		if testEx, err = read(d.TestFile); err != nil {
			return nil, nil, err
		}
	}
	return trainEx, testEx, nil
}

// checkWritable reports a read-only or missing output location before training starts.
func checkWritable(dirs ...string) error {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("output directory %s: %w", d, err)
		}
		f, err := os.CreateTemp(d, ".loraqa-write-test*")
		if err != nil {
			return fmt.Errorf("output directory %s is not writable: %w", d, err)
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// saveAdapter writes the adapter directory whole into fine_tuned_adapter_path:
// the PEFT adapter, the base's tokenizer files, the windows, the resolved
// config and the final metrics.
func saveAdapter(cfg *config.Config, a *peft.Adapter, baseDir string, st *train.State) error {
	out := cfg.FineTunedAdapterPath
	d := peft.NewDir(a)
	d.Tokenizer = baseDir
	d.Windows = &peft.Windows{MaxSeqLength: cfg.Data.MaxSeqLength, DocStride: cfg.Data.DocStride}
	if y, err := cfg.YAML(); err == nil {
		d.TrainConfig = y
	}
	final := map[string]any{"global_step": st.GlobalStep, "best_f1": st.BestF1}
	if n := len(st.Evals); n > 0 {
		final["final_eval"] = st.Evals[n-1]
	}
	b, _ := json.MarshalIndent(final, "", "  ")
	d.Metrics = append(b, '\n')
	if err := d.Write(out); err != nil {
		return err
	}
	logf("adapter saved to %s (%s)", out, strings.Join([]string{peft.ConfigFile, peft.WeightsFile, peft.WindowsFile, "tokenizer files"}, ", "))
	return nil
}
