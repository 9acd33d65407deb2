package verify

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

// Check is one comparison with the fixture.
type Check struct {
	Name      string  `json:"name"`
	MaxDiff   float64 `json:"max_abs_diff"`
	Tolerance float64 `json:"tolerance"`
	Pass      bool    `json:"pass"`
	Note      string  `json:"note,omitempty"`
}

// Report is the outcome of RunDType.
type Report struct {
	Fixture string   `json:"fixture"`
	Device  string   `json:"device"`
	DType   string   `json:"dtype"`
	Checks  []Check  `json:"checks"`
	Skipped []string `json:"skipped"`
	Pass    bool     `json:"pass"`
}

func (r *Report) add(name string, diff, tol float64, note string) {
	r.Checks = append(r.Checks, Check{Name: name, MaxDiff: diff, Tolerance: tol, Pass: diff <= tol && !math.IsNaN(diff), Note: note})
}

// HalfTolerance is the largest |Δ| allowed between the logits of a bf16 or
// fp16 frozen base and the fixture's float32 logits. bf16 keeps 8 bits of
// mantissa (a relative step of 2⁻⁸ ≈ 0.4%) at every matmul, so its logits
// move by a few hundredths; fp16 (11 bits) moves less.
var HalfTolerance = map[gotch.DType]float64{gotch.BFloat16: 6e-2, gotch.Half: 1e-2}

// Int8Tolerance is the largest |Δ| allowed between the logits of an int8 base
// (bert.Model.Quantize: int8 weights per output row, activations quantized
// per tensor to 7 bits at every linear) and the fixture's float32 logits.
// PyTorch's own quantize_dynamic moves the tiny fixtures' logits (within ±2.3)
// by 0.06–0.10; loraqa's int8 gives PyTorch's int8 logits (to 1e-5 but for a
// rounding step here and there), and with an adapter moves them by up to 0.15.
var Int8Tolerance = 0.25

// RunDType runs every check whose files the fixture holds: logits of base,
// base + adapter (safetensors and .bin) and merged, and the AdamW training
// steps, with the frozen base in dtype. Files that are present but unreadable
// are errors. With bf16 or fp16 the logits are compared at HalfTolerance and
// the training steps (exact to 1e-5 in float32) are skipped. With int8
// (gotch.Int8) the base's linears are quantized (bert.Model.Quantize), the
// adapters run over them in float32, the merged check merges into the float32
// base and then quantizes, the logits are compared at Int8Tolerance, and the
// training steps are skipped (int8 is for inference).
func RunDType(dir string, dev gotch.Device, dtype gotch.DType) (*Report, error) {
	r := &Report{Fixture: dir, Device: torch.DeviceName(dev), DType: torch.DTypeName(dtype)}
	has := func(p ...string) bool {
		_, err := os.Stat(filepath.Join(append([]string{dir}, p...)...))
		return err == nil
	}
	if !has("base", "config.json") {
		return nil, fmt.Errorf("%s: no base/config.json: not a fixture directory", dir)
	}
	load := func() (*bert.Model, error) {
		return bert.Load(filepath.Join(dir, "base"), bert.LoadOptions{Device: dev, DType: dtype})
	}
	if has("expected.json") {
		exp, err := ReadExpected(dir)
		if err != nil {
			return nil, err
		}
		tol := exp.Tolerance
		if tol == 0 {
			tol = 1e-4
		}
		if dtype == gotch.Int8 {
			tol = Int8Tolerance
		} else if dtype != gotch.Float {
			tol = HalfTolerance[dtype]
		}
		m, err := load()
		if err != nil {
			return nil, err
		}
		r.logits(m, exp, "base", func(b Batch) *Logits { return b.Base }, tol)
		for _, sub := range []string{"adapter", "adapter_bin"} {
			if !has(sub) {
				r.Skipped = append(r.Skipped, sub+" (absent)")
				continue
			}
			a, err := peft.Load(filepath.Join(dir, sub), m)
			if err != nil {
				m.Drop()
				return nil, err
			}
			r.logits(m, exp, sub+": base_plus_adapter", func(b Batch) *Logits { return b.BasePlusAdapter }, tol)
			if sub == "adapter" && dtype == gotch.Int8 {
				if err := r.mergedInt8(dir, exp, dev, tol); err != nil {
					a.Drop()
					m.Drop()
					return nil, err
				}
			} else if sub == "adapter" {
				if err := a.Merge(); err != nil {
					a.Drop()
					m.Drop()
					return nil, err
				}
				r.logits(m, exp, "merged", func(b Batch) *Logits { return b.Merged }, tol)
				if err := a.Unmerge(); err != nil {
					a.Drop()
					m.Drop()
					return nil, err
				}
			}
			a.Drop()
		}
		m.Drop()
	} else {
		r.Skipped = append(r.Skipped, "expected.json (absent): logits")
	}
	if dtype == gotch.Int8 {
		r.Skipped = append(r.Skipped, "training steps (int8 is for inference)")
	} else if dtype != gotch.Float {
		r.Skipped = append(r.Skipped, "training steps (compared in fp32 only)")
	} else if has("train_step.json") && has("adapter") {
		if err := r.trainSteps(dir, load, dev); err != nil {
			return nil, err
		}
	} else {
		r.Skipped = append(r.Skipped, "train_step.json or adapter/ (absent): training steps")
	}
	r.Pass = len(r.Checks) > 0
	for _, c := range r.Checks {
		r.Pass = r.Pass && c.Pass
	}
	return r, nil
}

// mergedInt8 is the merged check of an int8 run: the adapter merged into a
// float32 base, which is then quantized (as engine.Options.Merge does).
func (r *Report) mergedInt8(dir string, exp *Expected, dev gotch.Device, tol float64) error {
	m, err := bert.Load(filepath.Join(dir, "base"), bert.LoadOptions{Device: dev})
	if err != nil {
		return err
	}
	defer m.Drop()
	a, err := peft.Load(filepath.Join(dir, "adapter"), m)
	if err != nil {
		return err
	}
	defer a.Drop()
	if err := a.Merge(); err != nil {
		return err
	}
	if err := m.Quantize(); err != nil {
		return err
	}
	r.logits(m, exp, "merged", func(b Batch) *Logits { return b.Merged }, tol)
	return nil
}

func int64Batch(ids, mask, types [][]int64, dev gotch.Device) bert.Batch {
	var fi, fm, ft []int64
	for i := range ids {
		fi = append(fi, ids[i]...)
		fm = append(fm, mask[i]...)
		if types != nil {
			ft = append(ft, types[i]...)
		}
	}
	shape := []int64{int64(len(ids)), int64(len(ids[0]))}
	b := bert.Batch{InputIDs: torch.FromInt64(fi, shape, dev), AttentionMask: torch.FromInt64(fm, shape, dev)}
	if types != nil {
		b.TokenTypeIDs = torch.FromInt64(ft, shape, dev)
	}
	return b
}

func (r *Report) logits(m *bert.Model, exp *Expected, what string, pick func(Batch) *Logits, tol float64) {
	for _, b := range exp.Batches {
		want := pick(b)
		if want == nil {
			continue
		}
		in := int64Batch(b.InputIDs, b.AttentionMask, b.TokenTypeIDs, m.Device)
		var out bert.Output
		torch.NoGrad(func() { out = m.Forward(in, false) })
		d := math.Max(maxAbs2(torch.ToFloat32(out.StartLogits), want.Start), maxAbs2(torch.ToFloat32(out.EndLogits), want.End))
		out.Drop()
		in.Drop()
		r.add(fmt.Sprintf("%s logits, batch %s", what, b.Name), d, tol, "")
	}
}

func (r *Report) trainSteps(dir string, load func() (*bert.Model, error), dev gotch.Device) error {
	st, err := ReadTrainStep(dir)
	if err != nil {
		return err
	}
	m, err := load()
	if err != nil {
		return err
	}
	defer m.Drop()
	m.Config.Dropout, m.Config.AttentionDropout, m.Config.QADropout = 0, 0, 0
	a, err := peft.Load(filepath.Join(dir, "adapter"), m)
	if err != nil {
		return err
	}
	defer a.Drop()
	for _, l := range a.Layers {
		l.Dropout = 0
	}
	params := a.Params()
	initial := map[string][]float32{}
	for _, p := range params {
		if _, ok := st.Trainable[p.Key]; !ok {
			return fmt.Errorf("%s: train_step.json does not list trainable tensor %s", dir, p.Key)
		}
		initial[p.Key] = torch.ToFloat32(p.Tensor)
	}
	b := st.Batch
	in := int64Batch(b.InputIDs, b.AttentionMask, b.TokenTypeIDs, dev)
	in.StartPositions = torch.FromInt64(b.StartPositions, []int64{int64(len(b.StartPositions))}, dev)
	in.EndPositions = torch.FromInt64(b.EndPositions, []int64{int64(len(b.EndPositions))}, dev)
	defer in.Drop()
	h := st.Hyper
	opt := train.NewAdamW(params, train.AdamWConfig{Beta1: h.Betas[0], Beta2: h.Betas[1], Eps: h.Eps, WeightDecay: h.WeightDecay})
	defer opt.Drop()
	tolLoss, tolNorm, tolGrad, tolParam := st.Tolerance["loss"], st.Tolerance["grad_norm"], st.Tolerance["grads_step1"], st.Tolerance["params_after"]
	for step := 0; step < h.Steps; step++ {
		out := m.Forward(in, true)
		loss := float64(torch.ToFloat32(out.Loss)[0])
		if step < len(st.Losses) {
			r.add(fmt.Sprintf("train loss, step %d", step+1), math.Abs(loss-st.Losses[step]), tolLoss, "")
		}
		out.Loss.MustBackward()
		out.Drop()
		norm := train.ClipGradNorm(params, 0)
		if step < len(st.GradNorms) {
			r.add(fmt.Sprintf("grad norm, step %d", step+1), math.Abs(norm-st.GradNorms[step]), tolNorm, "")
		}
		if step == 0 {
			d := 0.0
			for _, p := range params {
				want, err := Flatten(st.GradsStep1[p.Key])
				if err != nil {
					return fmt.Errorf("%s: grads_step1[%s]: %w", dir, p.Key, err)
				}
				g := p.Tensor.MustGrad(false)
				d = math.Max(d, maxAbs(torch.ToFloat32(g), want))
				g.MustDrop()
			}
			r.add("step-1 gradients (all trainable tensors)", d, tolGrad, "")
		}
		opt.Update(h.LR)
		train.ZeroGrad(params)
	}
	noisy := map[string]bool{}
	for _, k := range st.NoiseDominated.Keys {
		noisy[k] = true
	}
	d := 0.0
	for _, p := range params {
		want, err := Flatten(st.ParamsAfter[p.Key])
		if err != nil {
			return fmt.Errorf("%s: params_after[%s]: %w", dir, p.Key, err)
		}
		got := torch.ToFloat32(p.Tensor)
		if noisy[p.Key] {
			// Its exact gradient is 0, so its exact value is the initial one: ours
			// must stay within steps*lr of it, as PyTorch's does.
			r.add("params after steps: "+p.Key, maxAbs(got, f64(initial[p.Key])), st.NoiseDominated.Tolerance,
				"noise-dominated: compared with its exact value, the initial one")
			continue
		}
		d = math.Max(d, maxAbs(got, want))
	}
	r.add(fmt.Sprintf("params after %d steps (all other trainable tensors)", h.Steps), d, tolParam, "")
	var after bert.Output
	torch.NoGrad(func() { after = m.Forward(in, true) })
	r.add("loss after steps", math.Abs(float64(torch.ToFloat32(after.Loss)[0])-st.LossAfter), tolLoss, "")
	after.Drop()
	return nil
}

func maxAbs(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i])-want[i]))
		if math.IsNaN(float64(got[i])) {
			return math.NaN()
		}
	}
	return d
}

func maxAbs2(got []float32, want [][]float64) float64 {
	var w []float64
	for _, r := range want {
		w = append(w, r...)
	}
	return maxAbs(got, w)
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}
