package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/train"
)

func runTrain(ctx context.Context, args []string) error {
	fs := newFlags("train", "[--config F] [--set k=v ...] [--resume latest|DIR]")
	var cf configFlags
	cf.register(fs)
	force := fs.Bool("force", false, forceFlagDoc)
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
	dev, dtype, warned, err := resolveDevice(cfg.Device, "train.dtype", cfg.Train.DType, *force, false)
	if err != nil {
		return err
	}
	trainEx, testEx, err := loadSplits(cfg)
	if err != nil {
		return err
	}
	job := train.Job{
		Base: cfg.BaseQAModel, Hub: hubOptions(), Device: dev, DType: dtype,
		Train: trainEx, Test: testEx, Features: featureOptions(cfg.Data, cfg.Seed),
		Version2WithNegative: string(cfg.Data.Version2WithNegative),
		LoRA:                 loraConfig(cfg.LoRA, cfg.BaseQAModel), InitFrom: cfg.LoRA.InitFrom,
		Options: trainOptions(cfg), Resume: *resume, Out: cfg.FineTunedAdapterPath,
		Observer: train.ProgressBar(os.Stderr), Logf: logfExcept(warned), Debug: cfg.LogLevel == "debug",
	}
	if y, err := cfg.YAML(); err == nil {
		job.TrainConfig = y
	}
	_, err = train.Run(ctx, job)
	if errors.Is(err, train.ErrInterrupted) {
		logf("%v: continue with --resume latest", err)
	}
	return err
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
	o.TF32, o.Deterministic, o.FastDropout = t.TF32, t.Deterministic, t.FastDropout
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
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
