package peft

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

// Linear is a LoRA layer wrapping a frozen base linear:
// base(x) + lora_B(lora_A(dropout(x))) * scaling.
type Linear struct {
	Base    *bert.Linear
	A, B    *ts.Tensor // lora_A.weight [r, in], lora_B.weight [out, r], float32
	Scaling float64
	Dropout float64
	Merged  bool
}

// Forward adds the low-rank update to the base output. When merged, the base
// weight already holds it.
func (l *Linear) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	out := l.Base.Forward(x, train)
	if l.Merged {
		return out
	}
	xd := x
	if train && l.Dropout > 0 {
		xd = ts.MustDropout(x, l.Dropout, true)
	}
	// A and B stay float32 (they are trained); over a half-precision base they
	// are cast to its dtype for the product, as autocast does, and their
	// gradients come back in float32 through the cast.
	A, B := l.A, l.B
	if x.DType() != A.DType() {
		A, B = A.MustTotype(x.DType(), false), B.MustTotype(x.DType(), false)
		defer A.MustDrop()
		defer B.MustDrop()
	}
	xa := ts.MustLinear(xd, A, ts.None) // [.., r]
	if xd != x {
		xd.MustDrop()
	}
	xa.MustMulScalar_(ts.FloatScalar(l.Scaling))
	delta := ts.MustLinear(xa, B, ts.None)
	xa.MustDrop()
	out.MustAdd_(delta) // the frozen linear's backward does not need its output
	delta.MustDrop()
	return out
}

// Param is a trainable tensor with its key in adapter_model.safetensors.
type Param struct {
	Key    string
	Tensor *ts.Tensor
	Decay  bool // HF Trainer's groups: no weight decay for biases and LayerNorm weights
}

// Adapter is a LoRA adapter injected into a model.
type Adapter struct {
	Config Config
	Layers map[string]*Linear      // by module name
	Saved  map[string]*bert.Linear // modules_to_save copies, by module name
	params []Param
	model  *bert.Model
}

// Params lists the trainable tensors in a stable order (sorted by key).
func (a *Adapter) Params() []Param { return a.params }

const keyPrefix = "base_model.model."

// QAModulesToSave is what PEFT's QUESTION_ANS task adds to modules_to_save.
var QAModulesToSave = []string{"qa_outputs"}

// Inject wraps every module the config targets with a fresh LoRA layer (A
// kaiming-uniform with a = √5, or N(0, 1/r) for "gaussian"; B zeros, so the model
// is unchanged) and replaces each module to save (qa_outputs for QUESTION_ANS)
// by a trainable copy. The base model stays frozen.
func Inject(m *bert.Model, cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{Config: cfg, Layers: map[string]*Linear{}, Saved: map[string]*bert.Linear{}, model: m}
	toSave := append([]string(nil), cfg.ModulesToSave...)
	if cfg.TaskType == "QUESTION_ANS" {
		for _, q := range QAModulesToSave {
			if !contains(toSave, q) {
				toSave = append(toSave, q)
			}
		}
	}
	modules := m.Modules()
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	var err error
	torch.NoGrad(func() {
		for _, name := range names {
			slot := modules[name]
			if matchesAny(name, toSave) {
				base, ok := (*slot).(*bert.Linear)
				if !ok {
					err = fmt.Errorf("module %q is already wrapped", name)
					return
				}
				cp := &bert.Linear{Weight: trainableCopy(base.Weight), Bias: trainableCopy(base.Bias)}
				*slot = cp
				a.Saved[name] = cp
				a.add(keyPrefix+name+".weight", cp.Weight, true)
				a.add(keyPrefix+name+".bias", cp.Bias, false)
				continue
			}
			if !cfg.Targets(name) {
				continue
			}
			base, ok := (*slot).(*bert.Linear)
			if !ok {
				err = fmt.Errorf("module %q is already wrapped", name)
				return
			}
			size := base.Weight.MustSize()
			out, in := size[0], size[1]
			r := int64(cfg.R)
			l := &Linear{Base: base, Scaling: cfg.Scaling(), Dropout: cfg.LoraDropout,
				A: ts.MustZeros([]int64{r, in}, gotch.Float, m.Device),
				B: ts.MustZeros([]int64{out, r}, gotch.Float, m.Device)}
			switch cfg.InitLoraWeights {
			case "gaussian":
				l.A.MustNormal_(0, 1/float64(r))
			case "false":
				// PEFT leaves nn.Linear's own init: kaiming-uniform for both.
				l.A.MustUniform_(-1/math.Sqrt(float64(in)), 1/math.Sqrt(float64(in)))
				l.B.MustUniform_(-1/math.Sqrt(float64(r)), 1/math.Sqrt(float64(r)))
			default:
				// kaiming_uniform_(a=√5): bound = gain·√(3/fan_in) = 1/√fan_in.
				l.A.MustUniform_(-1/math.Sqrt(float64(in)), 1/math.Sqrt(float64(in)))
			}
			l.A = l.A.MustSetRequiresGrad(true, true)
			l.B = l.B.MustSetRequiresGrad(true, true)
			*slot = l
			a.Layers[name] = l
			a.add(keyPrefix+name+".lora_A.weight", l.A, true)
			a.add(keyPrefix+name+".lora_B.weight", l.B, true)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(a.Layers) == 0 {
		a.Drop()
		return nil, fmt.Errorf("target_modules %s matched no module of this %s model (its linear modules end in %s)",
			a.targetsString(), m.Config.ModelType, moduleSuffixes(names))
	}
	if err := a.trainBiases(); err != nil {
		a.Drop()
		return nil, err
	}
	sort.Slice(a.params, func(i, j int) bool { return a.params[i].Key < a.params[j].Key })
	return a, nil
}

func (a *Adapter) targetsString() string {
	if a.Config.TargetRegex != "" {
		return fmt.Sprintf("%q", a.Config.TargetRegex)
	}
	return fmt.Sprint(a.Config.TargetModules)
}

// trainBiases makes base biases trainable for bias "all" or "lora_only".
func (a *Adapter) trainBiases() error {
	if a.Config.Bias == "none" {
		return nil
	}
	for name, slot := range a.model.Modules() {
		var lin *bert.Linear
		switch v := (*slot).(type) {
		case *Linear:
			lin = v.Base
		case *bert.Linear:
			if a.Config.Bias == "lora_only" || a.Saved[name] != nil {
				continue
			}
			lin = v
		}
		if lin == nil || lin.Bias == nil {
			continue
		}
		if lin.Bias.DType() != gotch.Float {
			return fmt.Errorf("bias %q training needs a float32 base (module %s)", a.Config.Bias, name)
		}
		lin.Bias.MustRequiresGrad_(true)
		a.add(keyPrefix+name+".bias", lin.Bias, false)
	}
	return nil
}

func (a *Adapter) add(key string, t *ts.Tensor, decay bool) {
	a.params = append(a.params, Param{Key: key, Tensor: t, Decay: decay})
}

func trainableCopy(t *ts.Tensor) *ts.Tensor {
	c := ts.MustZeros(t.MustSize(), gotch.Float, t.MustDevice())
	c.Copy_(t)
	return c.MustSetRequiresGrad(true, true)
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func matchesAny(name string, l []string) bool {
	for _, t := range l {
		if name == t || strings.HasSuffix(name, "."+t) {
			return true
		}
	}
	return false
}

func moduleSuffixes(names []string) string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		i := strings.LastIndex(n, ".")
		s := n[i+1:]
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// NumTrainable counts the trainable parameters.
func (a *Adapter) NumTrainable() int64 {
	var n int64
	for _, p := range a.params {
		n += int64(p.Tensor.Numel())
	}
	return n
}

// TrainableReport is PEFT's print_trainable_parameters line. "all params" counts
// the base, the LoRA weights and the modules_to_save copies, as PEFT does.
func (a *Adapter) TrainableReport() string {
	trainable := a.NumTrainable()
	all := a.model.NumParams()
	for _, p := range a.params {
		if !strings.HasSuffix(p.Key, ".bias") || a.isSavedKey(p.Key) {
			all += int64(p.Tensor.Numel())
		}
	}
	return fmt.Sprintf("trainable params: %s || all params: %s || trainable%%: %.4f",
		commas(trainable), commas(all), 100*float64(trainable)/float64(all))
}

func (a *Adapter) isSavedKey(key string) bool {
	for name := range a.Saved {
		if strings.HasPrefix(key, keyPrefix+name+".") {
			return true
		}
	}
	return false
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Drop frees the adapter's own tensors (LoRA weights and saved copies) and puts
// the base modules back into the model.
func (a *Adapter) Drop() {
	for name, slot := range a.model.Modules() {
		switch v := (*slot).(type) {
		case *Linear:
			if a.Layers[name] == v {
				if v.Merged {
					_ = a.unmergeOne(v)
				}
				*slot = v.Base
				v.A.MustDrop()
				v.B.MustDrop()
			}
		case *bert.Linear:
			if a.Saved[name] == v {
				// The original head is the base model's parameter of this name.
				*slot = &bert.Linear{Weight: a.model.Param(name + ".weight"), Bias: a.model.Param(name + ".bias")}
				v.Weight.MustDrop()
				v.Bias.MustDrop()
			}
		}
	}
	if a.Config.Bias != "none" {
		for _, p := range a.params {
			if p.Tensor.MustDefined() && p.Tensor.MustRequiresGrad() && strings.HasSuffix(p.Key, ".bias") && !a.isSavedKey(p.Key) {
				p.Tensor.MustRequiresGrad_(false)
			}
		}
	}
	a.params, a.Layers, a.Saved = nil, map[string]*Linear{}, map[string]*bert.Linear{}
}

// Detach puts the base modules back into the model without freeing the
// adapter, so that several adapters can share one base model (serve). Attach
// puts this adapter's layers in again. A merged adapter cannot be detached.
func (a *Adapter) Detach() error {
	for name, l := range a.Layers {
		if l.Merged {
			return fmt.Errorf("adapter is merged into the base weights (module %s): unmerge it first", name)
		}
	}
	mods := a.model.Modules()
	for name, l := range a.Layers {
		if slot := mods[name]; *slot == Module(l) {
			*slot = l.Base
		}
	}
	for name, s := range a.Saved {
		if slot := mods[name]; *slot == Module(s) {
			*slot = &bert.Linear{Weight: a.model.Param(name + ".weight"), Bias: a.model.Param(name + ".bias")}
		}
	}
	return nil
}

// Attach makes this adapter the model's active one (after Detach).
func (a *Adapter) Attach() error {
	mods := a.model.Modules()
	for name, l := range a.Layers {
		slot := mods[name]
		if lin, ok := (*slot).(*bert.Linear); !ok || lin != l.Base {
			return fmt.Errorf("module %s holds another adapter: detach it first", name)
		}
	}
	for name, l := range a.Layers {
		*mods[name] = l
	}
	for name, s := range a.Saved {
		*mods[name] = s
	}
	return nil
}

// Module is the model's layer interface, re-exported for slot comparisons.
type Module = bert.Module
