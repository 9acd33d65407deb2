package peft

import (
	"encoding/json"
	"fmt"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// delta is scaling · B·A in the base weight's dtype, checked for NaN/Inf.
func (l *Linear) delta() (*ts.Tensor, error) {
	d := l.B.MustMatmul(l.A, false).MustMulScalar(ts.FloatScalar(l.Scaling), true)
	fin := d.MustIsfinite(false).MustAll(true)
	ok := torch.ToFloat32(fin)[0] == 1
	fin.MustDrop()
	if !ok {
		d.MustDrop()
		return nil, fmt.Errorf("LoRA update holds NaN or Inf")
	}
	return d.MustTotype(l.Base.Weight.DType(), true), nil
}

// Merge folds every LoRA update into its base weight (W += scaling·B·A); the
// layers then compute the base alone. Nothing changes if any update is not finite.
func (a *Adapter) Merge() error {
	deltas := map[string]*ts.Tensor{}
	var err error
	torch.NoGrad(func() {
		for name, l := range a.Layers {
			if l.Merged {
				continue
			}
			d, e := l.delta()
			if e != nil {
				err = fmt.Errorf("merge %s: %w", name, e)
				return
			}
			deltas[name] = d
		}
	})
	if err != nil {
		for _, d := range deltas {
			d.MustDrop()
		}
		return err
	}
	torch.NoGrad(func() {
		for name, d := range deltas {
			l := a.Layers[name]
			l.Base.Weight.MustAdd_(d)
			d.MustDrop()
			l.Merged = true
		}
	})
	return nil
}

// Unmerge subtracts the LoRA updates again.
func (a *Adapter) Unmerge() error {
	for name, l := range a.Layers {
		if err := a.unmergeOne(l); err != nil {
			return fmt.Errorf("unmerge %s: %w", name, err)
		}
	}
	return nil
}

func (a *Adapter) unmergeOne(l *Linear) error {
	if !l.Merged {
		return nil
	}
	var err error
	torch.NoGrad(func() {
		d, e := l.delta()
		if e != nil {
			err = e
			return
		}
		l.Base.Weight.MustSub_(d)
		d.MustDrop()
		l.Merged = false
	})
	return err
}

// ExportMerged writes a standalone HF model directory: config.json (architecture
// ...ForQuestionAnswering), model.safetensors with the LoRA updates folded in and
// the adapter's QA head, and the tokenizer files found in tokenizerDir.
func (a *Adapter) ExportMerged(dir, tokenizerDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := a.model
	var tensors []safetensors.Tensor
	var err error
	torch.NoGrad(func() {
		for _, p := range m.Params() {
			t := p.Tensor
			var tmp *ts.Tensor
			if l := a.layerWithWeight(t); l != nil && !l.Merged {
				d, e := l.delta()
				if e != nil {
					err = fmt.Errorf("%s: %w", p.Name, e)
					return
				}
				tmp = t.MustAdd(d, false)
				d.MustDrop()
				t = tmp
			}
			if s := a.savedFor(p.Name); s != nil {
				t = s
			}
			v, shape := torch.ToFloat32(t), t.MustSize()
			if tmp != nil {
				tmp.MustDrop()
			}
			if !allFinite(v) {
				err = fmt.Errorf("%s holds NaN or Inf", p.Name)
				return
			}
			tensors = append(tensors, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: shape, Data: safetensors.Float32sToBytes(v)})
		}
	})
	if err != nil {
		return fmt.Errorf("export merged model: %w", err)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	cfg := map[string]any{}
	for k, v := range m.Config.Raw {
		cfg[k] = v
	}
	if m.Config.ModelType == "bert" {
		cfg["architectures"] = []string{"BertForQuestionAnswering"}
	} else {
		cfg["architectures"] = []string{"DistilBertForQuestionAnswering"}
	}
	cfg["model_type"] = m.Config.ModelType
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := atomicfile.Write(filepath.Join(dir, "config.json"), append(b, '\n')); err != nil {
		return err
	}
	return CopyTokenizerFiles(tokenizerDir, dir)
}

// TokenizerFiles are the files a tokenizer directory may hold.
var TokenizerFiles = []string{"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}

// CopyTokenizerFiles copies the tokenizer files present in src into dst.
func CopyTokenizerFiles(src, dst string) error {
	if src == "" {
		return nil
	}
	for _, f := range TokenizerFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if os.IsNotExist(err) {
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

func (a *Adapter) layerWithWeight(w *ts.Tensor) *Linear {
	for _, l := range a.Layers {
		if l.Base.Weight == w {
			return l
		}
	}
	return nil
}

func (a *Adapter) savedFor(param string) *ts.Tensor {
	for name, s := range a.Saved {
		switch param {
		case name + ".weight":
			return s.Weight
		case name + ".bias":
			return s.Bias
		}
	}
	return nil
}
