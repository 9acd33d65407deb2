package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// problem is one invalid value. related are the other keys a cross-key
// check involves, used to find where the values came from.
type problem struct {
	key     string
	msg     string
	related []string
}

func (p problem) err(source string) error {
	if source != "" {
		return errorf(ErrInvalid, "%s: %s (from %s)", p.key, p.msg, source)
	}
	return errorf(ErrInvalid, "%s: %s", p.key, p.msg)
}

var deviceRE = regexp.MustCompile(`^(auto|cpu|cuda|cuda:[0-9]+)$`)

// Validate checks every value's range; the error lists every problem, each
// naming its key.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p.err(""))
	}
	return errors.Join(errs...)
}

func (c *Config) problems() []problem {
	var ps []problem
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
		}
	}
	checkWith := func(ok bool, key string, related []string, format string, args ...any) {
		if !ok {
			ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...), related: related})
		}
	}
	oneOf := func(v, key string, allowed ...string) {
		check(slices.Contains(allowed, v), key, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	check(strings.TrimSpace(c.BaseQAModel) != "", "base_qa_model", "must not be empty")
	check(deviceRE.MatchString(c.Device), "device", "%q is not auto, cpu, cuda or cuda:N", c.Device)
	oneOf(c.LogLevel, "log_level", "debug", "info", "warn", "error")

	d := c.Data
	check(d.Format != "", "data.format", "must not be empty (auto detects the format)")
	checkWith(d.Input == "" || d.TrainFile == "", "data.input", []string{"data.train_file"}, "set either data.input or data.train_file, not both")
	checkWith(d.TestFile == "" || d.TrainFile != "", "data.test_file", []string{"data.train_file"}, "needs data.train_file")
	check(d.TestFraction >= 0 && d.TestFraction < 1, "data.test_fraction", "%v is not in [0, 1)", d.TestFraction)
	check(d.MaxSeqLength > 0, "data.max_seq_length", "%d must be > 0", d.MaxSeqLength)
	checkWith(d.DocStride >= 0 && d.DocStride < d.MaxSeqLength, "data.doc_stride", []string{"data.max_seq_length"}, "%d is not in [0, max_seq_length=%d)", d.DocStride, d.MaxSeqLength)
	oneOf(d.Mode, "data.mode", "windows", "truncate")
	check(d.NegativeFraction >= 0 && d.NegativeFraction <= 1, "data.negative_fraction", "%v is not in [0, 1]", d.NegativeFraction)
	check(d.NBestSize > 0, "data.n_best_size", "%d must be > 0", d.NBestSize)
	check(d.MaxAnswerLength > 0, "data.max_answer_length", "%d must be > 0", d.MaxAnswerLength)
	oneOf(string(d.Version2WithNegative), "data.version_2_with_negative", "auto", "true", "false")

	l := c.LoRA
	check(l.R > 0, "lora.r", "%d must be > 0", l.R)
	check(l.Alpha > 0, "lora.alpha", "%d must be > 0", l.Alpha)
	check(l.Dropout >= 0 && l.Dropout < 1, "lora.dropout", "%v is not in [0, 1)", l.Dropout)
	check(len(l.TargetModules) > 0 && !slices.Contains(l.TargetModules, ""), "lora.target_modules", "must be a non-empty list of module names")
	oneOf(l.Bias, "lora.bias", "none", "all", "lora_only")
	oneOf(string(l.InitLoRAWeights), "lora.init_lora_weights", "true", "false", "gaussian")
	check(!slices.ContainsFunc(l.LayersToTransform, func(i int) bool { return i < 0 }), "lora.layers_to_transform", "layer indexes must be >= 0")
	check(!slices.Contains(l.ModulesToSave, ""), "lora.modules_to_save", "module names must not be empty")

	t := c.Train
	check(t.LearningRate > 0, "train.learning_rate", "%v must be > 0", t.LearningRate)
	check(t.BatchSize > 0, "train.batch_size", "%d must be > 0", t.BatchSize)
	check(t.EvalBatchSize > 0, "train.eval_batch_size", "%d must be > 0", t.EvalBatchSize)
	checkWith(t.Epochs > 0 || (t.Epochs == 0 && t.MaxSteps > 0), "train.epochs", []string{"train.max_steps"}, "%d must be > 0 (or 0 with train.max_steps > 0)", t.Epochs)
	check(t.MaxSteps >= 0, "train.max_steps", "%d must be >= 0 (0 = train for epochs)", t.MaxSteps)
	check(t.WeightDecay >= 0, "train.weight_decay", "%v must be >= 0", t.WeightDecay)
	check(t.WarmupRatio >= 0 && t.WarmupRatio < 1, "train.warmup_ratio", "%v is not in [0, 1)", t.WarmupRatio)
	check(t.WarmupSteps >= 0, "train.warmup_steps", "%d must be >= 0", t.WarmupSteps)
	check(t.MaxGradNorm >= 0, "train.max_grad_norm", "%v must be >= 0 (0 = no clipping)", t.MaxGradNorm)
	check(t.GradientAccumulationSteps >= 1, "train.gradient_accumulation_steps", "%d must be >= 1", t.GradientAccumulationSteps)
	oneOf(t.LRScheduler, "train.lr_scheduler", "linear", "constant")
	check(t.LoggingSteps >= 0, "train.logging_steps", "%d must be >= 0", t.LoggingSteps)
	check(t.SaveTotalLimit >= 0, "train.save_total_limit", "%d must be >= 0 (0 = keep all)", t.SaveTotalLimit)
	check(t.EarlyStoppingPatience >= 0, "train.early_stopping_patience", "%d must be >= 0 (0 = off)", t.EarlyStoppingPatience)
	oneOf(t.NaNPolicy, "train.nan_policy", "stop", "skip")
	oneOf(t.Optim, "train.optim", "auto", "adamw_torch", "adamw_torch_fused", "adamw_hf")
	oneOf(t.MetricForBestModel, "train.metric_for_best_model", "f1", "exact_match", "loss")
	check(!(l.UseDoRA && l.LoraBias), "lora.use_dora", "cannot be combined with lora.lora_bias (PEFT does not support it)")
	if t.DType == "int8" {
		check(false, "train.dtype", "int8 is for inference only (predict, eval, serve and bench infer take --dtype int8); train in fp32 or bf16")
	} else {
		oneOf(t.DType, "train.dtype", "fp32", "bf16", "fp16", "auto")
	}
	check(t.Threads >= 0, "train.threads", "%d must be >= 0 (0 = LibTorch default)", t.Threads)
	return ps
}
