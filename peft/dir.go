package peft

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// The files loraqa keeps beside PEFT's in an adapter directory.
const (
	// WindowsFile records the windows the adapter was trained with.
	WindowsFile = "loraqa_windows.json"
	// TrainConfigFile is the resolved training config (`loraqa train`).
	TrainConfigFile = "loraqa_config.yaml"
	// MetricsFile holds the final metrics of the training run.
	MetricsFile = "metrics.json"
	// SQuAD2File records that the adapter was trained for SQuAD 2.0 (HF's
	// version_2_with_negative) and the null_score_diff_threshold it answers
	// with (SQuAD2).
	SQuAD2File = "loraqa_squad2.json"
)

// Windows are the windows an adapter was trained with: max_seq_length
// tokens overlapping by doc_stride.
type Windows struct {
	MaxSeqLength int `json:"max_seq_length" yaml:"max_seq_length"`
	DocStride    int `json:"doc_stride" yaml:"doc_stride"`
}

// SQuAD2 is an adapter's SQuAD 2.0 setting (SQuAD2File): whether its
// answers are post-processed with HF's version_2_with_negative — the null
// answer "" competes with the spans — and the null_score_diff_threshold it
// abstains by: "" when the null score beats the best span's by more than it.
// `loraqa train` writes it for a run with version_2_with_negative on, with
// the threshold that gave the best F1 on the evaluation set (the official
// SQuAD 2.0 evaluation's best_f1_thresh).
type SQuAD2 struct {
	Version2WithNegative   bool    `json:"version_2_with_negative"`
	NullScoreDiffThreshold float64 `json:"null_score_diff_threshold"`
	// ThresholdFrom says where the threshold came from: ThresholdBestF1
	// (tuned on the evaluation set) or ThresholdConfig (the configured one,
	// when there was no evaluation to tune it on).
	ThresholdFrom string `json:"threshold_from,omitempty"`
}

// Where an SQuAD2 threshold came from.
const (
	// ThresholdBestF1: best_f1_thresh of the official SQuAD 2.0 evaluation
	// of the adapter on the evaluation set (null odds as no-answer
	// probabilities).
	ThresholdBestF1 = "best_f1_thresh"
	// ThresholdConfig: data.null_score_diff_threshold as configured.
	ThresholdConfig = "data.null_score_diff_threshold"
)

func (w Windows) valid() bool {
	return w.MaxSeqLength >= 4 && w.DocStride >= 0 && w.DocStride < w.MaxSeqLength
}

// Dir is an adapter directory, the unit PEFT's save_pretrained writes and
// from_pretrained reads, with loraqa's files beside PEFT's. It is the only
// reader and writer of those files: OpenDir reads the directory once, Write
// writes it whole.
type Dir struct {
	// Path is where the directory was read from ("" for one not yet written).
	Path string
	// Config is adapter_config.json, validated.
	Config Config
	// Weights are the adapter's tensors by PEFT key (adapter_model.safetensors,
	// else adapter_model.bin).
	Weights map[string]bert.HostTensor
	// Tokenizer is the directory holding the tokenizer files: Path when the
	// adapter was saved with its tokenizer, else "" (the base's applies).
	// Write copies the tokenizer files from it.
	Tokenizer string
	// Windows are the windows it was trained with; nil when not recorded
	// (an adapter made by PEFT, say).
	Windows *Windows
	// TrainConfig is the resolved training config (YAML), if saved.
	TrainConfig []byte
	// Metrics are the training run's final metrics, if saved.
	Metrics json.RawMessage
	// SQuAD2 is the adapter's SQuAD 2.0 setting and threshold (SQuAD2File);
	// nil when not recorded: the adapter answers every question with a span.
	SQuAD2 *SQuAD2

	weightsFile string
	state       []safetensors.Tensor // in the adapter's order, for Write
}

// OpenDir reads the adapter directory at path: its config (validated), its
// weights, whether it holds a tokenizer, its training windows (also from the
// data section of the loraqa_config.yaml older versions saved), its SQuAD 2.0
// setting, its training config and metrics. Errors name the file.
func OpenDir(path string) (*Dir, error) {
	d := &Dir{Path: path}
	cfgPath := filepath.Join(path, ConfigFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("adapter config: %w", err)
	}
	// PEFT's from_pretrained: the config first, its errors before the weights'.
	if err := json.Unmarshal(b, &d.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if err := d.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if d.Weights, d.weightsFile, err = readAdapterWeights(path); err != nil {
		return nil, err
	}
	if data.HasTokenizerFiles(path) {
		d.Tokenizer = path
	}
	if d.TrainConfig, err = readOptional(filepath.Join(path, TrainConfigFile)); err != nil {
		return nil, err
	}
	if d.Metrics, err = readOptional(filepath.Join(path, MetricsFile)); err != nil {
		return nil, err
	}
	if err := d.readWindows(); err != nil {
		return nil, err
	}
	if err := d.readSQuAD2(); err != nil {
		return nil, err
	}
	return d, nil
}

// readSQuAD2 reads SQuAD2File, if there is one: version_2_with_negative
// must be given, the threshold defaults to HF's 0.
func (d *Dir) readSQuAD2() error {
	path := filepath.Join(d.Path, SQuAD2File)
	b, err := readOptional(path)
	if err != nil || b == nil {
		return err
	}
	var raw struct {
		V2 *bool `json:"version_2_with_negative"`
		SQuAD2
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if raw.V2 == nil {
		return fmt.Errorf("%s: version_2_with_negative is missing", path)
	}
	raw.SQuAD2.Version2WithNegative = *raw.V2
	d.SQuAD2 = &raw.SQuAD2
	return nil
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// readWindows reads WindowsFile, else the data section of TrainConfig.
func (d *Dir) readWindows() error {
	path := filepath.Join(d.Path, WindowsFile)
	b, err := readOptional(path)
	if err != nil {
		return err
	}
	if b != nil {
		var w Windows
		if err := json.Unmarshal(b, &w); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !w.valid() {
			return fmt.Errorf("%s: max_seq_length %d and doc_stride %d are not windows", path, w.MaxSeqLength, w.DocStride)
		}
		d.Windows = &w
		return nil
	}
	if d.TrainConfig == nil {
		return nil
	}
	var cfg struct {
		Data Windows `yaml:"data"`
	}
	if err := yaml.Unmarshal(d.TrainConfig, &cfg); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(d.Path, TrainConfigFile), err)
	}
	if cfg.Data.valid() { // else no data section (or not a usable one): as if absent
		d.Windows = &cfg.Data
	}
	return nil
}

// BaseModel is the base_model_name_or_path of the adapter: the base it was
// trained on. Empty is an error that names the file.
func (d *Dir) BaseModel() (string, error) {
	if d.Config.BaseModel == "" {
		return "", fmt.Errorf("%s: base_model_name_or_path is empty: the base model must be named", filepath.Join(d.Path, ConfigFile))
	}
	return d.Config.BaseModel, nil
}

// Inject injects the adapter into m and sets its weights. Every tensor the
// config implies must be present with the right shape; errors name the
// file, the key and both shapes.
func (d *Dir) Inject(m *bert.Model) (*Adapter, error) {
	cfg := d.Config
	cfg.InitLoraWeights = "true"
	a, err := Inject(m, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.Path, ConfigFile), err)
	}
	if err := a.SetState(d.Weights, d.weightsFile); err != nil {
		a.Drop()
		return nil, err
	}
	return a, nil
}

// SetWeights copies the directory's weights into a (an adapter with the same
// config: a checkpoint of the run training a).
func (d *Dir) SetWeights(a *Adapter) error { return a.SetState(d.Weights, d.weightsFile) }

// NewDir is the directory that holds a's config (inference_mode set) and
// its current weights, ready for Write; the caller fills in the rest.
func NewDir(a *Adapter) *Dir {
	cfg := a.Config
	cfg.InferenceMode = true
	return &Dir{Config: cfg, state: a.State()}
}

// owned reports whether name is a file an adapter directory's owner writes.
func owned(name string) bool {
	return name == ConfigFile || name == WeightsFile || name == WeightsFileBin || name == WindowsFile ||
		name == TrainConfigFile || name == MetricsFile || name == SQuAD2File || slices.Contains(data.TokenizerFiles, name)
}

// Write writes the directory whole at path: every file into a temporary
// directory beside it, renamed into place once complete (a directory at path
// is replaced; files in it that an adapter directory does not hold are kept).
// Non-finite weights are refused.
func (d *Dir) Write(path string) error {
	return atomicfile.WriteDir(path, d.writeFiles, func(name string) bool { return !owned(name) })
}

// writeFiles writes d's files into dir (which exists).
func (d *Dir) writeFiles(dir string) error {
	state := d.state
	if state == nil {
		for _, k := range slices.Sorted(maps.Keys(d.Weights)) {
			h := d.Weights[k]
			state = append(state, safetensors.Tensor{Name: k, DType: safetensors.F32, Shape: h.Shape, Data: safetensors.Float32sToBytes(h.Data)})
		}
	}
	for _, t := range state {
		if v, _ := safetensors.BytesToFloat32s(t.Data); !allFinite(v) {
			return fmt.Errorf("adapter tensor %q holds NaN or Inf: not saved", t.Name)
		}
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), state, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	b, err := json.Marshal(d.Config)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, ConfigFile), append(b, '\n')); err != nil {
		return err
	}
	if err := copyTokenizerFiles(d.Tokenizer, dir); err != nil {
		return err
	}
	// The optional files, each written when the directory has it.
	for _, f := range []struct {
		name string
		v    any // JSON
		set  bool
	}{{WindowsFile, d.Windows, d.Windows != nil}, {SQuAD2File, d.SQuAD2, d.SQuAD2 != nil}} {
		if f.set {
			if err := atomicfile.WriteJSON(filepath.Join(dir, f.name), f.v); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		name string
		b    []byte // as they were read
	}{{TrainConfigFile, d.TrainConfig}, {MetricsFile, d.Metrics}} {
		if f.b != nil {
			if err := atomicfile.Write(filepath.Join(dir, f.name), f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTokenizerFiles copies the tokenizer files present in src into dst.
func copyTokenizerFiles(src, dst string) error {
	if src == "" {
		return nil
	}
	for _, f := range data.TokenizerFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dst, f), b); err != nil {
			return err
		}
	}
	return nil
}
