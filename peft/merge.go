package peft

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// delta is scaling · B·A in the base weight's dtype, checked for NaN/Inf.
func (l *Linear) delta() (*ts.Tensor, error) {
	d := l.B.MustMatmul(l.A, false).MustMulScalar(ts.FloatScalar(l.Scaling), true)
	if err := checkFinite(d, "LoRA update"); err != nil {
		d.MustDrop()
		return nil, err
	}
	return d.MustTotype(l.Base.Weight.DType(), true), nil
}

func checkFinite(t *ts.Tensor, what string) error {
	fin := t.MustIsfinite(false).MustAll(true)
	ok := torch.ToFloat32(fin)[0] == 1
	fin.MustDrop()
	if !ok {
		return fmt.Errorf("%s holds NaN or Inf", what)
	}
	return nil
}

// mergedWeights are the base weight and bias with the adapter folded in
// (W + s·B·A, or for DoRA m/‖W + s·B·A‖ ⊙ (W + s·B·A); b + s·lora_B.bias with
// lora_bias; bias nil when unchanged), and DoRA's row norm (nil otherwise).
func (l *Linear) mergedWeights() (w, b, norm *ts.Tensor, err error) {
	d, err := l.delta()
	if err != nil {
		return nil, nil, nil, err
	}
	w = l.Base.Weight.MustAdd(d, false)
	d.MustDrop()
	if l.Magnitude != nil {
		norm = l.weightNorm()
		f := l.Magnitude.MustDiv(norm, false).MustUnsqueeze(1, true)
		if err := checkFinite(f, "DoRA magnitude / weight norm"); err != nil {
			f.MustDrop()
			w.MustDrop()
			norm.MustDrop()
			return nil, nil, nil, err
		}
		w2 := w.MustMul(f.MustTotype(w.DType(), true), true)
		w = w2
	}
	if l.BiasB != nil {
		bb := l.BiasB.MustMulScalar(ts.FloatScalar(l.Scaling), false).MustTotype(l.Base.Bias.DType(), true)
		b = l.Base.Bias.MustAdd(bb, false)
		bb.MustDrop()
	}
	return w, b, norm, nil
}

type mergedLayer struct {
	w, b, norm *ts.Tensor
}

// Merge folds every LoRA update into its base weight (W += scaling·B·A; DoRA
// and lora_bias as PEFT merges them); the layers then compute the base alone.
// Nothing changes if any update is not finite.
func (a *Adapter) Merge() error {
	for name, l := range a.Layers {
		if !l.Merged && l.Base.Int8() {
			return fmt.Errorf("merge %s: the base linear is int8; merge into the float32 base, then quantize it (bert.Model.Quantize)", name)
		}
		if !l.Merged && l.Base.Packed() {
			return fmt.Errorf("merge %s: the base linear is packed for inference; merge before packing it (bert.Model.Pack)", name)
		}
	}
	ms := map[string]mergedLayer{}
	var err error
	torch.NoGrad(func() {
		for name, l := range a.Layers {
			if l.Merged {
				continue
			}
			w, b, n, e := l.mergedWeights()
			if e != nil {
				err = fmt.Errorf("merge %s: %w", name, e)
				return
			}
			ms[name] = mergedLayer{w, b, n}
		}
	})
	if err != nil {
		for _, m := range ms {
			m.drop()
		}
		return err
	}
	torch.NoGrad(func() {
		for name, m := range ms {
			l := a.Layers[name]
			l.Base.Weight.Copy_(m.w)
			if m.b != nil {
				l.Base.Bias.Copy_(m.b)
			}
			l.mergedNorm = m.norm
			m.norm = nil
			m.drop()
			l.Merged = true
		}
	})
	return nil
}

func (m mergedLayer) drop() {
	for _, t := range []*ts.Tensor{m.w, m.b, m.norm} {
		if t != nil {
			t.MustDrop()
		}
	}
}

// Unmerge takes the LoRA updates out of the base weights again.
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
	if l.Base.Int8() {
		return fmt.Errorf("the merged weight was quantized to int8: the update cannot be taken out (reload the base)")
	}
	if l.Base.Packed() {
		return fmt.Errorf("the merged weight was packed for inference: the update cannot be taken out (reload the base)")
	}
	var err error
	torch.NoGrad(func() {
		d, e := l.delta()
		if e != nil {
			err = e
			return
		}
		if l.Magnitude != nil && l.mergedNorm != nil { // W = W'/(m/‖·‖) − s·B·A
			f := l.Magnitude.MustDiv(l.mergedNorm, false).MustUnsqueeze(1, true).MustTotype(l.Base.Weight.DType(), true)
			l.Base.Weight.MustDiv_(f)
			f.MustDrop()
			l.mergedNorm.MustDrop()
			l.mergedNorm = nil
		}
		l.Base.Weight.MustSub_(d)
		d.MustDrop()
		if l.BiasB != nil {
			bb := l.BiasB.MustMulScalar(ts.FloatScalar(l.Scaling), false).MustTotype(l.Base.Bias.DType(), true)
			l.Base.Bias.MustSub_(bb)
			bb.MustDrop()
		}
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
	if m.Int8() || m.Packed() {
		return fmt.Errorf("export merged model: the base is int8 or packed for inference; export from a float32 one")
	}
	var tensors []safetensors.Tensor
	var err error
	torch.NoGrad(func() {
		for _, p := range m.Params() {
			t := p.Tensor
			var tmp *ts.Tensor
			if l, isBias := a.layerWith(t); l != nil && !l.Merged {
				w, b, n, e := l.mergedWeights()
				if e != nil {
					err = fmt.Errorf("%s: %w", p.Name, e)
					return
				}
				if n != nil {
					n.MustDrop()
				}
				if isBias {
					w.MustDrop()
					tmp = b
				} else {
					if b != nil {
						b.MustDrop()
					}
					tmp = w
				}
				if tmp != nil {
					t = tmp
				}
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
	cfg["architectures"] = []string{m.Config.Architecture()}
	cfg["model_type"] = m.Config.ModelType
	if err := atomicfile.WriteJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	return copyTokenizerFiles(tokenizerDir, dir)
}

// layerWith finds the LoRA layer whose base weight (or, isBias, bias) is t.
func (a *Adapter) layerWith(t *ts.Tensor) (l *Linear, isBias bool) {
	for _, l := range a.Layers {
		if l.Base.Weight == t {
			return l, false
		}
		if l.Base.Bias == t && l.BiasB != nil {
			return l, true
		}
	}
	return nil, false
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
