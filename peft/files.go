package peft

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// Save writes adapter_config.json and adapter_model.safetensors into dir,
// refusing non-finite values: a part of a directory that its writer renames
// into place whole (a checkpoint). An adapter directory of its own is
// NewDir(a).Write.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return NewDir(a).writeFiles(dir)
}

// Load reads the adapter directory dir and injects it into m: OpenDir, then
// Dir.Inject.
func Load(dir string, m *bert.Model) (*Adapter, error) {
	d, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return d.Inject(m)
}

// SetState copies host tensors (by PEFT key, as saved or with PEFT's in-memory
// ".default" names) into the adapter. A trained base bias is read under current
// PEFT's name ("<module>.base_layer.bias") or PEFT 0.6's ("<module>.bias").
// The extra copies PEFT >= 0.7 writes for bias "all" (a module to save's
// ".modules_to_save.bias" and ".original_module.bias") are checked or skipped.
func (a *Adapter) SetState(weights map[string]bert.HostTensor, file string) error {
	norm := map[string]bert.HostTensor{}
	dup := map[string]bert.HostTensor{}
	for k, v := range weights {
		if a.isSavedKey(k) && strings.Contains(k, ".original_module.") {
			continue // the frozen original of a module to save: unused
		}
		k = strings.Replace(k, modulesToSaveIn, "", 1)
		k = strings.Replace(k, ".lora_A"+defaultInfix+".", ".lora_A.", 1)
		k = strings.Replace(k, ".lora_B"+defaultInfix+".", ".lora_B.", 1)
		k = strings.Replace(k, ".lora_magnitude_vector"+defaultInfix+".weight", ".lora_magnitude_vector", 1)
		k = strings.TrimSuffix(k, ".lora_magnitude_vector"+defaultInfix)
		if a.isSavedKey(k) && strings.Contains(k, ".modules_to_save.") {
			dup[strings.Replace(k, ".modules_to_save.", ".", 1)] = v
			continue
		}
		norm[k] = v
	}
	for k, v := range dup {
		if _, ok := norm[k]; !ok {
			norm[k] = v
		}
	}
	used := map[string]bool{}
	for _, p := range a.params {
		key := p.Key
		h, ok := norm[key]
		if !ok && strings.HasSuffix(key, ".base_layer.bias") {
			key = strings.TrimSuffix(key, ".base_layer.bias") + ".bias" // PEFT 0.6's name
			h, ok = norm[key]
		}
		if !ok {
			if a.isSavedKey(p.Key) && a.Config.TaskType != "QUESTION_ANS" {
				continue
			}
			return fmt.Errorf("%s: adapter tensor %q is missing%s", file, p.Key, a.missingHint(p.Key))
		}
		used[key] = true
		want := p.Tensor.MustSize()
		if !slices.Equal(want, h.Shape) {
			return fmt.Errorf("%s: adapter tensor %q has shape %v, this base model needs %v%s", file, key, h.Shape, want, a.shapeHint(p.Key))
		}
		if !allFinite(h.Data) {
			return fmt.Errorf("%s: adapter tensor %q holds NaN or Inf", file, key)
		}
		if err := torch.CopyFromFloat32(p.Tensor, h.Data, h.Shape); err != nil {
			return fmt.Errorf("%s: %q: %w", file, key, err)
		}
	}
	for k, v := range dup {
		if h, ok := norm[k]; ok && used[k] && !slices.Equal(h.Data, v.Data) {
			return fmt.Errorf("%s: adapter tensors %q and its modules_to_save copy differ", file, k)
		}
	}
	if extra := bert.Unused(norm, used); len(extra) > 0 {
		return fmt.Errorf("%s: %d adapter tensors match no module of this model, e.g. %q%s", file, len(extra), extra[0], a.extraHint(extra))
	}
	return nil
}

// missingHint names the adapter_config.json key that implies a missing tensor.
func (a *Adapter) missingHint(key string) string {
	switch {
	case strings.HasSuffix(key, ".lora_magnitude_vector"):
		return " (adapter_config.json sets use_dora: true, but the weights hold no DoRA magnitude vectors)"
	case strings.HasSuffix(key, ".lora_B.bias"):
		return " (adapter_config.json sets lora_bias: true)"
	case strings.HasSuffix(key, ".bias") && !a.isSavedKey(key):
		return fmt.Sprintf(" (adapter_config.json sets bias %q: the adapter must hold the trained base biases)", a.Config.Bias)
	case strings.Contains(key, ".lora_"):
		return " (is a module that exclude_modules, layers_to_transform or target_modules should leave out targeted?)"
	}
	return " (was the adapter trained on another base?)"
}

func (a *Adapter) shapeHint(key string) string {
	c := a.Config
	if strings.Contains(key, ".lora_A.") || strings.Contains(key, ".lora_B.weight") {
		mod := strings.TrimPrefix(key[:strings.Index(key, ".lora_")], keyPrefix)
		src := "r"
		if _, ok := matchPattern(c.RankPattern, mod); ok {
			src = "rank_pattern"
		}
		return fmt.Sprintf(" (rank %d for %s from adapter_config.json's %s; rank_pattern %v)", c.RankFor(mod), mod, src, c.RankPattern)
	}
	return " (was the adapter trained on another base?)"
}

// extraHint names the adapter_config.json key whose absence leaves tensors unused.
func (a *Adapter) extraHint(extra []string) string {
	for _, k := range extra {
		switch {
		case strings.HasSuffix(k, ".lora_magnitude_vector"):
			return " (DoRA magnitude vectors, but adapter_config.json does not set use_dora: true)"
		case strings.HasSuffix(k, ".lora_B.bias"):
			return " (lora_B biases, but adapter_config.json does not set lora_bias: true)"
		case strings.HasSuffix(k, ".bias") && !strings.Contains(k, ".lora_"):
			return fmt.Sprintf(" (trained base biases, but adapter_config.json sets bias %q)", a.Config.Bias)
		case strings.Contains(k, ".lora_A.") || strings.Contains(k, ".lora_B."):
			return " (LoRA weights for modules adapter_config.json does not target: check target_modules, exclude_modules, layers_to_transform)"
		}
	}
	return " (was the adapter trained on another architecture?)"
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
