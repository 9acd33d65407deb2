package peft

import (
	"encoding/json"
	"fmt"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// File names PEFT uses.
const (
	ConfigFile      = "adapter_config.json"
	WeightsFile     = "adapter_model.safetensors"
	WeightsFileBin  = "adapter_model.bin"
	defaultInfix    = ".default"
	modulesToSaveIn = ".modules_to_save.default"
)

// State returns the adapter's tensors as float32 host tensors, by PEFT key.
func (a *Adapter) State() []safetensors.Tensor {
	out := make([]safetensors.Tensor, 0, len(a.params))
	for _, p := range a.params {
		v := torch.ToFloat32(p.Tensor)
		out = append(out, safetensors.Tensor{Name: p.Key, DType: safetensors.F32, Shape: p.Tensor.MustSize(), Data: safetensors.Float32sToBytes(v)})
	}
	return out
}

// Save writes adapter_config.json and adapter_model.safetensors into dir (each
// through a temporary file and a rename), refusing non-finite values.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	state := a.State()
	for _, t := range state {
		if v, _ := safetensors.BytesToFloat32s(t.Data); !allFinite(v) {
			return fmt.Errorf("adapter tensor %q holds NaN or Inf: not saved", t.Name)
		}
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), state, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	cfg := a.Config
	cfg.InferenceMode = true
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ConfigFile), append(b, '\n'))
}

// Load reads a PEFT adapter directory (adapter_config.json with
// adapter_model.safetensors or adapter_model.bin) and injects it into m. Every
// tensor the config implies must be present with the right shape; errors name
// the file, the key and both shapes.
func Load(dir string, m *bert.Model) (*Adapter, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	weights, file, err := readAdapterWeights(dir)
	if err != nil {
		return nil, err
	}
	cfg.InitLoraWeights = "true"
	a, err := Inject(m, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if err := a.SetState(weights, file); err != nil {
		a.Drop()
		return nil, err
	}
	return a, nil
}

// SetState copies host tensors (by PEFT key, as saved or with PEFT's in-memory
// ".default" names) into the adapter.
func (a *Adapter) SetState(weights map[string]bert.HostTensor, file string) error {
	norm := map[string]bert.HostTensor{}
	for k, v := range weights {
		k = strings.Replace(k, modulesToSaveIn, "", 1)
		k = strings.Replace(k, ".lora_A"+defaultInfix+".", ".lora_A.", 1)
		k = strings.Replace(k, ".lora_B"+defaultInfix+".", ".lora_B.", 1)
		norm[k] = v
	}
	used := map[string]bool{}
	for _, p := range a.params {
		h, ok := norm[p.Key]
		if !ok {
			if a.isSavedKey(p.Key) && a.Config.TaskType != "QUESTION_ANS" {
				continue
			}
			return fmt.Errorf("%s: adapter tensor %q is missing", file, p.Key)
		}
		used[p.Key] = true
		want := p.Tensor.MustSize()
		if !torch.SameShape(want, h.Shape) {
			return fmt.Errorf("%s: adapter tensor %q has shape %v, this base model needs %v (was the adapter trained on another base?)", file, p.Key, h.Shape, want)
		}
		if !allFinite(h.Data) {
			return fmt.Errorf("%s: adapter tensor %q holds NaN or Inf", file, p.Key)
		}
		if err := torch.CopyFromFloat32(p.Tensor, h.Data, h.Shape); err != nil {
			return fmt.Errorf("%s: %q: %w", file, p.Key, err)
		}
	}
	var extra []string
	for k := range norm {
		if !used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("%s: %d adapter tensors match no module of this model, e.g. %q (was the adapter trained on another architecture?)", file, len(extra), extra[0])
	}
	return nil
}

func readAdapterWeights(dir string) (map[string]bert.HostTensor, string, error) {
	st := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(st); err == nil {
		w, err := bert.ReadSafetensors(st)
		return w, st, err
	}
	bin := filepath.Join(dir, WeightsFileBin)
	if _, err := os.Stat(bin); err == nil {
		w, err := bert.ReadTorchBin(bin)
		return w, bin, err
	}
	return nil, "", fmt.Errorf("%s: no %s or %s", dir, WeightsFile, WeightsFileBin)
}

func allFinite(v []float32) bool {
	for _, f := range v {
		if f != f || f > 3.4028234663852886e38 || f < -3.4028234663852886e38 {
			return false
		}
	}
	return true
}
