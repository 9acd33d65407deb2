package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileErrors(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
		kind    error
		want    []string
	}{
		{"wrong type", "c.yaml", "train: {epochs: \"five\"}\n", ErrType,
			[]string{`key "train.epochs": want an integer, got string "five"`}},
		{"float for int", "c.yaml", "lora: {r: 1.5}\n", ErrType, []string{`key "lora.r": want an integer, got float64 1.5`}},
		{"list item type", "c.yaml", "lora: {target_modules: [q_lin, 3]}\n", ErrType, []string{`key "lora.target_modules": item 1: want a string, got int 3`}},
		{"string for list", "c.yaml", "lora: {target_modules: q_lin}\n", ErrType, []string{`want a list of strings, got string "q_lin"`}},
		{"bool as string", "c.yaml", "train: {eval_every_epoch: \"yes\"}\n", ErrType, []string{`key "train.eval_every_epoch": want true or false`}},
		{"section not a mapping", "c.yaml", "train: 5\n", ErrType, []string{`key "train": want a mapping of train.* keys, got int 5`}},
		{"infinite float", "c.yaml", "train: {learning_rate: .inf}\n", ErrType, []string{`key "train.learning_rate": want a finite number`}},
		{"unknown key", "c.yaml", "train: {epoch: 3}\n", ErrUnknownKey, []string{`unknown key "train.epoch"; did you mean "train.epochs"?`}},
		{"key in the wrong section", "c.yaml", "data: {r: 3}\n", ErrUnknownKey, []string{`unknown key "data.r"; did you mean "lora.r"?`}},
		{"unknown top-level key", "c.yaml", "base_model: x\n", ErrUnknownKey, []string{`unknown key "base_model"; did you mean "base_qa_model"?`}},
		{"all problems reported", "c.yaml", "lora: {rr: 1, dropout: x}\n", ErrUnknownKey,
			[]string{`unknown key "lora.rr"; did you mean "lora.r"?`, `key "lora.dropout": want a number, got string "x"`}},
		{"bad YAML", "c.yaml", "train: {epochs: [\n", nil, []string{"config file"}},
		{"duplicate YAML key", "c.yaml", "seed: 1\nseed: 2\n", nil, []string{"already defined"}},
		{"bad JSON", "c.json", `{"seed": }`, nil, []string{"config file"}},
		{"JSON wrong type", "c.json", `{"train": {"batch_size": "8"}}`, ErrType, []string{`key "train.batch_size": want an integer, got string "8"`}},
		{"unsupported extension", "c.ini", "seed=1\n", nil, []string{`unsupported extension ".ini"`}},
		{"invalid value names source", "c.yaml", "lora: {dropout: 1.5}\n", ErrInvalid, []string{`lora.dropout: 1.5 is not in [0, 1) (from config file `}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.file, c.content)
			_, err := Load(withEnv(path, nil))
			require.Error(t, err)
			assert.ErrorContains(t, err, path, "error names the file")
			for _, w := range c.want {
				assert.ErrorContains(t, err, w)
			}
			if c.kind != nil {
				assert.ErrorIs(t, err, c.kind)
			}
		})
	}
}

func TestMissingAndHugeFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	_, err := Load(withEnv(missing, nil))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, missing)

	huge := filepath.Join(t.TempDir(), "huge.yaml")
	require.NoError(t, os.WriteFile(huge, make([]byte, MaxFileSize+1), 0o644))
	_, err = Load(withEnv(huge, nil))
	assert.ErrorContains(t, err, huge+": larger than")
}

func TestSetAndEnvErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		sets []string
		kind error
		want string
	}{
		{"unknown set key", nil, []string{"train.epoch=3"}, ErrUnknownKey, `--set "train.epoch=3": unknown key "train.epoch"; did you mean "train.epochs"?`},
		{"set without =", nil, []string{"train.epochs"}, ErrInvalid, `--set "train.epochs": want section.key=value`},
		{"set wrong type", nil, []string{"train.batch_size=eight"}, ErrType, `key "train.batch_size": want an integer, got "eight"`},
		{"set NaN", nil, []string{"train.learning_rate=NaN"}, ErrType, `want a finite number, got "NaN"`},
		{"set list item", nil, []string{"lora.layers_to_transform=1,x"}, ErrType, `item 1: want an integer, got "x"`},
		{"env wrong type", map[string]string{"LORAQA_TRAIN_EPOCHS": "two"}, nil, ErrType, `environment variable LORAQA_TRAIN_EPOCHS (key "train.epochs"): want an integer, got "two"`},
		{"env typo", map[string]string{"LORAQA_TRAIN_EPOHCS": "2"}, nil, ErrUnknownKey, "environment variable LORAQA_TRAIN_EPOHCS is not a config key; did you mean LORAQA_TRAIN_EPOCHS?"},
		{"env without section", map[string]string{"LORAQA_EPOCHS": "2"}, nil, ErrUnknownKey, "did you mean LORAQA_TRAIN_EPOCHS?"},
		{"env wrong section", map[string]string{"LORAQA_DATA_LEARNING_RATE": "2"}, nil, ErrUnknownKey, "did you mean LORAQA_TRAIN_LEARNING_RATE?"},
		{"prefixed exact name", map[string]string{"LORAQA_BASE_QA_MODEL": "x"}, nil, ErrUnknownKey, "LORAQA_BASE_QA_MODEL is not a config key; did you mean BASE_QA_MODEL?"},
		{"unknown in a section", map[string]string{"LORAQA_LORA_ZZZ": "x"}, nil, ErrUnknownKey, "LORAQA_LORA_ZZZ is not a config key"},
		{"invalid value from env", map[string]string{"LORAQA_DEVICE": "gpu"}, nil, ErrInvalid, `device: "gpu" is not auto, cpu, cuda or cuda:N (from environment variable LORAQA_DEVICE)`},
		{"invalid value from set", nil, []string{"data.doc_stride=384"}, ErrInvalid, "data.doc_stride: 384 is not in [0, max_seq_length=384) (from --set)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(withEnv("", c.env, c.sets...))
			require.Error(t, err)
			assert.ErrorIs(t, err, c.kind)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"r", func(c *Config) { c.LoRA.R = 0 }, "lora.r: 0 must be > 0"},
		{"dropout", func(c *Config) { c.LoRA.Dropout = 1 }, "lora.dropout: 1 is not in [0, 1)"},
		{"negative dropout", func(c *Config) { c.LoRA.Dropout = -0.1 }, "lora.dropout: -0.1 is not in [0, 1)"},
		{"test fraction", func(c *Config) { c.Data.TestFraction = 1 }, "data.test_fraction: 1 is not in [0, 1)"},
		{"doc stride", func(c *Config) { c.Data.DocStride = 500 }, "data.doc_stride: 500 is not in [0, max_seq_length=384)"},
		{"lr", func(c *Config) { c.Train.LearningRate = 0 }, "train.learning_rate: 0 must be > 0"},
		{"batch", func(c *Config) { c.Train.BatchSize = -1 }, "train.batch_size: -1 must be > 0"},
		{"eval batch", func(c *Config) { c.Train.EvalBatchSize = 0 }, "train.eval_batch_size: 0 must be > 0"},
		{"device", func(c *Config) { c.Device = "cuda:x" }, `device: "cuda:x" is not auto, cpu, cuda or cuda:N`},
		{"bias", func(c *Config) { c.LoRA.Bias = "some" }, `lora.bias: "some" is not one of none, all, lora_only`},
		{"mode", func(c *Config) { c.Data.Mode = "slide" }, `data.mode: "slide" is not one of windows, truncate`},
		{"targets", func(c *Config) { c.LoRA.TargetModules = nil }, "lora.target_modules: must be a non-empty list of module names"},
		{"init weights", func(c *Config) { c.LoRA.InitLoRAWeights = "kaiming" }, `lora.init_lora_weights: "kaiming" is not one of true, false, gaussian`},
		{"input and train file", func(c *Config) { c.Data.Input, c.Data.TrainFile = "a", "b" }, "data.input: set either data.input or data.train_file, not both"},
		{"test file alone", func(c *Config) { c.Data.TestFile = "t" }, "data.test_file: needs data.train_file"},
		{"epochs", func(c *Config) { c.Train.Epochs = 0 }, "train.epochs: 0 must be > 0 (or 0 with train.max_steps > 0)"},
		{"accumulation", func(c *Config) { c.Train.GradientAccumulationSteps = 0 }, "train.gradient_accumulation_steps: 0 must be >= 1"},
		{"scheduler", func(c *Config) { c.Train.LRScheduler = "cosine" }, `train.lr_scheduler: "cosine" is not one of linear, constant`},
		{"nan policy", func(c *Config) { c.Train.NaNPolicy = "ignore" }, `train.nan_policy: "ignore" is not one of stop, skip`},
		{"dtype", func(c *Config) { c.Train.DType = "fp8" }, `train.dtype: "fp8" is not one of fp32, bf16, fp16, auto`},
		{"int8", func(c *Config) { c.Train.DType = "int8" }, "train.dtype: int8 is for inference only (predict, eval, serve and bench infer take --dtype int8); train in fp32 or bf16"},
		{"warmup ratio", func(c *Config) { c.Train.WarmupRatio = 1 }, "train.warmup_ratio: 1 is not in [0, 1)"},
		{"negative fraction", func(c *Config) { c.Data.NegativeFraction = 1.5 }, "data.negative_fraction: 1.5 is not in [0, 1]"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, `log_level: "loud" is not one of debug, info, warn, error`},
		{"empty model", func(c *Config) { c.BaseQAModel = " " }, "base_qa_model: must not be empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.modify(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Equal(t, c.want, err.Error(), "exactly one problem, naming its key")
		})
	}
	ok := Default()
	ok.Train.Epochs, ok.Train.MaxSteps = 0, 100
	ok.Device = "cuda:12"
	assert.NoError(t, ok.Validate(), "epochs 0 is fine with max_steps")
}

func TestSuggestions(t *testing.T) {
	cases := []struct{ in, want string }{
		{"train.lerning_rate", "train.learning_rate"},
		{"lora.target_module", "lora.target_modules"},
		{"epochs", "train.epochs"},
		{"divice", "device"},
	}
	for _, c := range cases {
		got, ok := nearest(c.in, Keys(), ".")
		assert.True(t, ok, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	_, ok := nearest("completely_unrelated_thing", Keys(), ".")
	assert.False(t, ok, "no suggestion when nothing is close")
	assert.Equal(t, 3, Levenshtein("kitten", "sitting"))
	assert.Equal(t, 0, Levenshtein("", ""))
	assert.Equal(t, 4, Levenshtein("", "abcd"))
}
