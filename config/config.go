package config

// Config is the resolved run configuration. The mapstructure and yaml tags
// are the keys of the config file.
type Config struct {
	BaseQAModel          string `mapstructure:"base_qa_model" yaml:"base_qa_model"`
	FineTunedAdapterPath string `mapstructure:"fine_tuned_adapter_path" yaml:"fine_tuned_adapter_path"`
	OutputDir            string `mapstructure:"output_dir" yaml:"output_dir"`
	Device               string `mapstructure:"device" yaml:"device"`
	Seed                 int64  `mapstructure:"seed" yaml:"seed"`
	LogLevel             string `mapstructure:"log_level" yaml:"log_level"`
	Data                 Data   `mapstructure:"data" yaml:"data"`
	LoRA                 LoRA   `mapstructure:"lora" yaml:"lora"`
	Train                Train  `mapstructure:"train" yaml:"train"`
}

// Data configures reading, splitting and featurizing the QA material.
type Data struct {
	// Input is one file to split into train and test; TrainFile and
	// TestFile are the alternative for data already split.
	Input        string  `mapstructure:"input" yaml:"input"`
	Format       string  `mapstructure:"format" yaml:"format"`
	TrainFile    string  `mapstructure:"train_file" yaml:"train_file"`
	TestFile     string  `mapstructure:"test_file" yaml:"test_file"`
	TestFraction float64 `mapstructure:"test_fraction" yaml:"test_fraction"`
	Separator    string  `mapstructure:"separator" yaml:"separator"`
	MaxSeqLength int     `mapstructure:"max_seq_length" yaml:"max_seq_length"`
	DocStride    int     `mapstructure:"doc_stride" yaml:"doc_stride"`
	// Mode is "windows" (overlapping windows over long contexts, as HF
	// run_qa) or "truncate" (one window per example).
	Mode string `mapstructure:"mode" yaml:"mode"`
	// NegativeFraction is the fraction of training windows that do not
	// contain the answer that are kept; 1 keeps all, as HF does.
	NegativeFraction float64 `mapstructure:"negative_fraction" yaml:"negative_fraction"`
	NBestSize        int     `mapstructure:"n_best_size" yaml:"n_best_size"`
	MaxAnswerLength  int     `mapstructure:"max_answer_length" yaml:"max_answer_length"`
	// Version2WithNegative is HF's version_2_with_negative (SQuAD 2.0):
	// "auto" (on when some question has no answer), "true" or "false". A
	// YAML boolean is accepted.
	Version2WithNegative AutoBool `mapstructure:"version_2_with_negative" yaml:"version_2_with_negative"`
	// NullScoreDiffThreshold is HF's null_score_diff_threshold: with
	// version_2_with_negative on, a question is answered "" when its null
	// score beats its best span's by more than this.
	NullScoreDiffThreshold float64 `mapstructure:"null_score_diff_threshold" yaml:"null_score_diff_threshold"`
}

// AutoBool is "auto", "true" or "false".
type AutoBool string

// LoRA mirrors PEFT's LoraConfig.
type LoRA struct {
	R             int      `mapstructure:"r" yaml:"r"`
	Alpha         int      `mapstructure:"alpha" yaml:"alpha"`
	Dropout       float64  `mapstructure:"dropout" yaml:"dropout"`
	TargetModules []string `mapstructure:"target_modules" yaml:"target_modules"`
	Bias          string   `mapstructure:"bias" yaml:"bias"`
	UseRSLoRA     bool     `mapstructure:"use_rslora" yaml:"use_rslora"`
	// InitLoRAWeights is "true" (PEFT default: A Kaiming-uniform, B zero),
	// "false" (both random) or "gaussian". A YAML boolean is accepted.
	InitLoRAWeights   InitWeights `mapstructure:"init_lora_weights" yaml:"init_lora_weights"`
	LayersToTransform []int       `mapstructure:"layers_to_transform" yaml:"layers_to_transform"`
	ModulesToSave     []string    `mapstructure:"modules_to_save" yaml:"modules_to_save"`
	// InitFrom, when set, is a PEFT adapter directory to start training from
	// (its weights and its adapter_config.json, as PEFT's
	// PeftModel.from_pretrained(..., is_trainable=True)); the other lora keys
	// are then not used.
	InitFrom string `mapstructure:"init_from" yaml:"init_from"`
	// UseDoRA trains DoRA (weight-decomposed LoRA) layers; LoraBias gives
	// lora_B a bias (PEFT's use_dora and lora_bias).
	UseDoRA  bool `mapstructure:"use_dora" yaml:"use_dora"`
	LoraBias bool `mapstructure:"lora_bias" yaml:"lora_bias"`
}

// InitWeights is the value of lora.init_lora_weights.
type InitWeights string

// Train configures the optimizer and the training loop (HF Trainer names).
type Train struct {
	LearningRate              float64 `mapstructure:"learning_rate" yaml:"learning_rate"`
	BatchSize                 int     `mapstructure:"batch_size" yaml:"batch_size"`
	EvalBatchSize             int     `mapstructure:"eval_batch_size" yaml:"eval_batch_size"` // HF's per_device_eval_batch_size
	Epochs                    int     `mapstructure:"epochs" yaml:"epochs"`
	WeightDecay               float64 `mapstructure:"weight_decay" yaml:"weight_decay"`
	WarmupRatio               float64 `mapstructure:"warmup_ratio" yaml:"warmup_ratio"`
	WarmupSteps               int     `mapstructure:"warmup_steps" yaml:"warmup_steps"`
	MaxGradNorm               float64 `mapstructure:"max_grad_norm" yaml:"max_grad_norm"`
	GradientAccumulationSteps int     `mapstructure:"gradient_accumulation_steps" yaml:"gradient_accumulation_steps"`
	LRScheduler               string  `mapstructure:"lr_scheduler" yaml:"lr_scheduler"`
	LoggingSteps              int     `mapstructure:"logging_steps" yaml:"logging_steps"`
	// EvalEveryEpoch false evaluates only after the last epoch.
	EvalEveryEpoch bool `mapstructure:"eval_every_epoch" yaml:"eval_every_epoch"`
	// Optim is auto (the fused AdamW on CUDA, adamw_torch elsewhere),
	// adamw_torch (torch.optim.AdamW in multi-tensor ops), adamw_torch_fused
	// (its fused kernel) or adamw_hf (transformers 4.x's AdamW).
	Optim string `mapstructure:"optim" yaml:"optim"`
	// TF32 lets CUDA run float32 matmuls in TF32 (off, as in PyTorch).
	TF32 bool `mapstructure:"tf32" yaml:"tf32"`
	// Deterministic makes CUDA use deterministic algorithms and cuBLAS's
	// fixed workspace (off, as in PyTorch): resume is then bit-exact on a GPU.
	Deterministic bool `mapstructure:"deterministic" yaml:"deterministic"`
	// FastDropout draws the CPU's dropout masks with LibTorch's own generator
	// (faster on Intel CPUs) instead of as PyTorch draws them (off).
	FastDropout bool `mapstructure:"fast_dropout" yaml:"fast_dropout"`
	// MetricForBestModel picks the best checkpoint: f1 (default: the metric
	// the task is judged by), exact_match, or loss (HF's default).
	MetricForBestModel    string `mapstructure:"metric_for_best_model" yaml:"metric_for_best_model"`
	SaveTotalLimit        int    `mapstructure:"save_total_limit" yaml:"save_total_limit"`
	LoadBestModelAtEnd    bool   `mapstructure:"load_best_model_at_end" yaml:"load_best_model_at_end"`
	EarlyStoppingPatience int    `mapstructure:"early_stopping_patience" yaml:"early_stopping_patience"`
	// MaxSteps > 0 overrides Epochs.
	MaxSteps  int    `mapstructure:"max_steps" yaml:"max_steps"`
	NaNPolicy string `mapstructure:"nan_policy" yaml:"nan_policy"`
	DType     string `mapstructure:"dtype" yaml:"dtype"`
	// Threads is the CPU thread count; 0 lets LibTorch choose.
	Threads int `mapstructure:"threads" yaml:"threads"`
}

// Default returns the reference recipe's configuration.
func Default() Config {
	return Config{
		BaseQAModel:          "distilbert-base-uncased",
		FineTunedAdapterPath: "out/adapter",
		OutputDir:            "out/run",
		Device:               "auto",
		Seed:                 42,
		LogLevel:             "info",
		Data: Data{
			Format:           "auto",
			TestFraction:     0.1,
			Separator:        " ",
			MaxSeqLength:     384,
			DocStride:        128,
			Mode:             "windows",
			NegativeFraction: 1.0,
			NBestSize:        20,
			MaxAnswerLength:  30,
			// as HF's run_qa: version_2_with_negative is a flag there, off
			// unless given; auto turns it on for data that needs it
			Version2WithNegative: "auto",
		},
		LoRA: LoRA{
			R:                 16,
			Alpha:             32,
			Dropout:           0.05,
			TargetModules:     []string{"q_lin", "v_lin"},
			Bias:              "none",
			InitLoRAWeights:   "true",
			LayersToTransform: []int{},
			ModulesToSave:     []string{},
		},
		Train: Train{
			LearningRate:              2e-5,
			BatchSize:                 8,
			EvalBatchSize:             8,
			Epochs:                    5,
			WeightDecay:               0.01,
			MaxGradNorm:               1.0,
			GradientAccumulationSteps: 1,
			LRScheduler:               "linear",
			LoggingSteps:              10,
			EvalEveryEpoch:            true,
			Optim:                     "auto",
			MetricForBestModel:        "f1",
			SaveTotalLimit:            2,
			LoadBestModelAtEnd:        true,
			NaNPolicy:                 "stop",
			DType:                     "fp32",
		},
	}
}
