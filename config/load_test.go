package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultsAreTheReferenceRecipe(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	assert.Equal(t, 16, c.LoRA.R)
	assert.Equal(t, 32, c.LoRA.Alpha)
	assert.Equal(t, 0.05, c.LoRA.Dropout)
	assert.Equal(t, []string{"q_lin", "v_lin"}, c.LoRA.TargetModules)
	assert.Equal(t, "none", c.LoRA.Bias)
	assert.Equal(t, 2e-5, c.Train.LearningRate)
	assert.Equal(t, 8, c.Train.BatchSize)
	assert.Equal(t, 5, c.Train.Epochs)
	assert.Equal(t, 0.01, c.Train.WeightDecay)
	assert.Equal(t, 1.0, c.Train.MaxGradNorm)
	assert.Equal(t, 0.1, c.Data.TestFraction)
	assert.Equal(t, 384, c.Data.MaxSeqLength)
	assert.Equal(t, 128, c.Data.DocStride)
	assert.Equal(t, "auto", c.Device)

	loaded, err := Load(withEnv("", nil))
	require.NoError(t, err)
	assert.Equal(t, c, *loaded, "Load with no file, env or --set gives the defaults")
}

func TestPrecedence(t *testing.T) {
	file := "train: {epochs: 3}\nbase_qa_model: file-model\n"
	cases := []struct {
		name      string
		file      bool
		env       map[string]string
		sets      []string
		epochs    int
		baseModel string
	}{
		{"default", false, nil, nil, 5, "distilbert-base-uncased"},
		{"file over default", true, nil, nil, 3, "file-model"},
		{"env over file", true, map[string]string{"LORAQA_TRAIN_EPOCHS": "2", "BASE_QA_MODEL": "env-model"}, nil, 2, "env-model"},
		{"set over env", true, map[string]string{"LORAQA_TRAIN_EPOCHS": "2", "BASE_QA_MODEL": "env-model"}, []string{"train.epochs=1", "base_qa_model=set-model"}, 1, "set-model"},
		{"set over file", true, nil, []string{"train.epochs=7"}, 7, "file-model"},
		{"later set wins", false, nil, []string{"train.epochs=7", "train.epochs=9"}, 9, "distilbert-base-uncased"},
		{"empty env var is unset", true, map[string]string{"LORAQA_TRAIN_EPOCHS": "", "BASE_QA_MODEL": ""}, nil, 3, "file-model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file {
				path = writeConfig(t, "run.yaml", file)
			}
			cfg, err := Load(withEnv(path, c.env, c.sets...))
			require.NoError(t, err)
			assert.Equal(t, c.epochs, cfg.Train.Epochs)
			assert.Equal(t, c.baseModel, cfg.BaseQAModel)
		})
	}
}

func TestEnvironmentNames(t *testing.T) {
	cases := []struct {
		key, env string
	}{
		{"base_qa_model", "BASE_QA_MODEL"},
		{"fine_tuned_adapter_path", "FINE_TUNED_ADAPTER_PATH"},
		{"train.epochs", "LORAQA_TRAIN_EPOCHS"},
		{"data.max_seq_length", "LORAQA_DATA_MAX_SEQ_LENGTH"},
		{"lora.target_modules", "LORAQA_LORA_TARGET_MODULES"},
		{"device", "LORAQA_DEVICE"},
	}
	for _, c := range cases {
		assert.Equal(t, c.env, EnvName(c.key))
	}
	cfg, err := Load(withEnv("", map[string]string{
		"BASE_QA_MODEL":              "/models/base",
		"FINE_TUNED_ADAPTER_PATH":    "/models/adapter",
		"LORAQA_TRAIN_EPOCHS":        "2",
		"LORAQA_LORA_TARGET_MODULES": "q_lin, k_lin,v_lin",
		"LORAQA_LORA_USE_RSLORA":     "true",
		"LORAQA_TRAIN_LEARNING_RATE": "3e-4",
		"LORAQA_SEED":                "-7",
		"LORAQA_DEBUG":               "1", // not config keys: ignored
		"LORAQA_TESTDATA":            "/repo/.build/testdata",
		"LORAQA_DATA":                "/data",
		"LORAQA_BIN":                 "/repo/bin/loraqa",
		"LORAQA_REF_PYTHON":          "/usr/bin/python3",
		"LORAQA_REQUIRE_REF":         "1",
		"LORAQA_SEED_CHILD":          "1",
	}))
	require.NoError(t, err)
	assert.Equal(t, "/models/base", cfg.BaseQAModel)
	assert.Equal(t, "/models/adapter", cfg.FineTunedAdapterPath)
	assert.Equal(t, 2, cfg.Train.Epochs)
	assert.Equal(t, []string{"q_lin", "k_lin", "v_lin"}, cfg.LoRA.TargetModules)
	assert.True(t, cfg.LoRA.UseRSLoRA)
	assert.Equal(t, 3e-4, cfg.Train.LearningRate)
	assert.Equal(t, int64(-7), cfg.Seed)
}

func TestSetValues(t *testing.T) {
	cfg, err := Load(withEnv("", nil,
		"lora.target_modules=[q_lin, \"out_lin\"]",
		"lora.layers_to_transform=0,1",
		"lora.modules_to_save=",
		"lora.init_lora_weights=Gaussian",
		"train.eval_every_epoch=false",
		"data.separator=\t",
		"device=cuda:1",
		"output_dir=a=b",
	))
	require.NoError(t, err)
	assert.Equal(t, []string{"q_lin", "out_lin"}, cfg.LoRA.TargetModules)
	assert.Equal(t, []int{0, 1}, cfg.LoRA.LayersToTransform)
	assert.Equal(t, []string{}, cfg.LoRA.ModulesToSave)
	assert.Equal(t, InitWeights("gaussian"), cfg.LoRA.InitLoRAWeights)
	assert.False(t, cfg.Train.EvalEveryEpoch)
	assert.Equal(t, "\t", cfg.Data.Separator, "string values are kept verbatim")
	assert.Equal(t, "cuda:1", cfg.Device)
	assert.Equal(t, "a=b", cfg.OutputDir, "only the first = splits")
}

func TestFileFormatsAgree(t *testing.T) {
	files := map[string]string{
		"c.yaml": `
base_qa_model: org/model
seed: 7
data: {input: qa.txt, test_fraction: 0.2}
lora: {r: 8, target_modules: [q_lin, k_lin], init_lora_weights: gaussian}
train: {learning_rate: 1e-4, epochs: 2, eval_every_epoch: false}
`,
		"c.json": `{"base_qa_model": "org/model", "seed": 7,
 "data": {"input": "qa.txt", "test_fraction": 0.2},
 "lora": {"r": 8, "target_modules": ["q_lin", "k_lin"], "init_lora_weights": "gaussian"},
 "train": {"learning_rate": 0.0001, "epochs": 2, "eval_every_epoch": false}}`,
		"c.toml": `base_qa_model = "org/model"
seed = 7
[data]
input = "qa.txt"
test_fraction = 0.2
[lora]
r = 8
target_modules = ["q_lin", "k_lin"]
init_lora_weights = "gaussian"
[train]
learning_rate = 1e-4
epochs = 2
eval_every_epoch = false
`,
	}
	want := Default()
	want.BaseQAModel, want.Seed = "org/model", 7
	want.Data.Input, want.Data.TestFraction = "qa.txt", 0.2
	want.LoRA.R, want.LoRA.TargetModules, want.LoRA.InitLoRAWeights = 8, []string{"q_lin", "k_lin"}, "gaussian"
	want.Train.LearningRate, want.Train.Epochs, want.Train.EvalEveryEpoch = 1e-4, 2, false
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(withEnv(writeConfig(t, name, content), nil))
			require.NoError(t, err)
			assert.Equal(t, want, *cfg)
		})
	}
}

// TestVersion2WithNegative: auto by default; true, false (YAML booleans or
// strings, any case) and auto from a file, an environment variable or --set;
// the threshold with it.
func TestVersion2WithNegative(t *testing.T) {
	assert.Equal(t, AutoBool("auto"), Default().Data.Version2WithNegative)
	assert.Zero(t, Default().Data.NullScoreDiffThreshold)
	tests := []struct {
		name, file string
		env        map[string]string
		sets       []string
		want       AutoBool
		thresh     float64
	}{
		{"yaml true", "data: {version_2_with_negative: true, null_score_diff_threshold: -1.5}\n", nil, nil, "true", -1.5},
		{"yaml false", "data: {version_2_with_negative: false}\n", nil, nil, "false", 0},
		{"yaml string", "data: {version_2_with_negative: Auto}\n", nil, nil, "auto", 0},
		{"env", "", map[string]string{"LORAQA_DATA_VERSION_2_WITH_NEGATIVE": "TRUE", "LORAQA_DATA_NULL_SCORE_DIFF_THRESHOLD": "2"}, nil, "true", 2},
		{"set", "", nil, []string{"data.version_2_with_negative=false", "data.null_score_diff_threshold=0.25"}, "false", 0.25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.file != "" {
				file = writeConfig(t, "c.yaml", tc.file)
			}
			cfg, err := Load(withEnv(file, tc.env, tc.sets...))
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.Data.Version2WithNegative)
			assert.Equal(t, tc.thresh, cfg.Data.NullScoreDiffThreshold)
		})
	}
	_, err := Load(withEnv("", nil, "data.version_2_with_negative=maybe"))
	assert.ErrorContains(t, err, `data.version_2_with_negative: "maybe" is not one of auto, true, false`)
	_, err = Load(withEnv(writeConfig(t, "c.yaml", "data: {version_2_with_negative: 1}\n"), nil))
	assert.ErrorContains(t, err, `want true, false or "auto"`)
}

func TestInitLoRAWeightsAcceptsYAMLBool(t *testing.T) {
	cfg, err := Load(withEnv(writeConfig(t, "c.yaml", "lora: {init_lora_weights: false}\n"), nil))
	require.NoError(t, err)
	assert.Equal(t, InitWeights("false"), cfg.LoRA.InitLoRAWeights)
}

func TestYAMLRoundTrip(t *testing.T) {
	c := Default()
	c.BaseQAModel = "org/name@v1"
	c.Data.Separator = "|"
	c.Data.TrainFile, c.Data.TestFile = "train.jsonl", "test.jsonl"
	c.LoRA.LayersToTransform = []int{0, 3}
	c.LoRA.ModulesToSave = []string{"qa_outputs"}
	c.LoRA.InitLoRAWeights = "true"
	c.Train.LearningRate = 3.3e-7
	c.Train.MaxGradNorm = 0
	c.Seed = -1
	out, err := c.YAML()
	require.NoError(t, err)
	assert.Contains(t, string(out), "train:\n  learning_rate: 3.3e-07\n")
	back, err := Load(withEnv(writeConfig(t, "resolved.yaml", string(out)), nil))
	require.NoError(t, err)
	assert.Equal(t, c, *back)
}

func TestKeys(t *testing.T) {
	keys := Keys()
	assert.Len(t, keys, 56) // 6 top-level + 14 data + 12 lora + 24 train
	assert.Equal(t, "base_qa_model", keys[0])
	for _, k := range []string{"data.doc_stride", "data.version_2_with_negative", "data.null_score_diff_threshold", "lora.use_rslora", "train.nan_policy", "log_level", "data.negative_fraction", "lora.init_from", "lora.use_dora", "lora.lora_bias", "train.optim", "train.metric_for_best_model", "train.eval_batch_size", "train.tf32", "train.deterministic", "train.fast_dropout"} {
		assert.Contains(t, keys, k)
	}
}
