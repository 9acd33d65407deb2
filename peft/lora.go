package peft

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

// Linear is a LoRA layer wrapping a frozen base linear:
// base(x) + lora_B(lora_A(dropout(x))) * scaling. With Magnitude set it is a
// DoRA layer (forwardDoRA); with BiasB, lora_B has a bias (PEFT's lora_bias).
type Linear struct {
	Base      *bert.Linear
	A, B      *ts.Tensor // lora_A.weight [r, in], lora_B.weight [out, r], float32
	BiasB     *ts.Tensor // lora_B.bias [out] (lora_bias), or nil
	Magnitude *ts.Tensor // lora_magnitude_vector [out] (DoRA), or nil
	Scaling   float64
	Dropout   float64
	Merged    bool
	// mergedNorm is DoRA's weight norm at merge time (to unmerge exactly).
	mergedNorm *ts.Tensor
}

// Forward adds the low-rank update to the base output. When merged, the base
// weight already holds it.
func (l *Linear) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	if l.Magnitude != nil && !l.Merged {
		if l.Base.Int8() { // Inject refuses it; an adapter injected before Quantize
			panic(&ts.LoraqaError{Err: fmt.Errorf("a DoRA layer needs its base weight in float32, and the base was quantized to int8")})
		}
		return l.forwardDoRA(x, train)
	}
	out := l.Base.Forward(x, train)
	if l.Merged {
		return out
	}
	xd := x
	if train && l.Dropout > 0 {
		xd = torch.Dropout(x, l.Dropout)
	}
	delta := l.update(xd)
	if xd != x {
		xd.MustDrop()
	}
	out.MustAdd_(delta) // the frozen linear's backward does not need its output
	delta.MustDrop()
	return out
}

// update is the low-rank update of x (dropout already applied):
// lora_B(lora_A(x))·scaling, plus lora_B's bias with lora_bias.
func (l *Linear) update(x *ts.Tensor) *ts.Tensor {
	// A and B stay float32 (they are trained); over a half-precision base they
	// are cast to its dtype for the product, as autocast does, and their
	// gradients come back in float32 through the cast.
	A, B := l.A, l.B
	if x.DType() != A.DType() {
		A, B = A.MustTotype(x.DType(), false), B.MustTotype(x.DType(), false)
		defer A.MustDrop()
		defer B.MustDrop()
	}
	xa := ts.MustLinear(x, A, ts.None) // [.., r]
	// With lora_bias: (xAᵀBᵀ + b)·scaling, as PEFT.
	if l.BiasB != nil {
		bb := l.BiasB
		if bb.DType() != B.DType() {
			bb = bb.MustTotype(B.DType(), false)
			defer bb.MustDrop()
		}
		delta := ts.MustLinear(xa, B, bb)
		xa.MustDrop()
		delta.MustMulScalar_(ts.FloatScalar(l.Scaling))
		return delta
	}
	xa.MustMulScalar_(ts.FloatScalar(l.Scaling))
	delta := ts.MustLinear(xa, B, ts.None)
	xa.MustDrop()
	return delta
}

// Param is a trainable tensor with its key in adapter_model.safetensors.
type Param struct {
	Key    string
	Tensor *ts.Tensor
	Decay  bool // HF Trainer's groups: no weight decay for biases and LayerNorm weights
}

// trainedBias is a base bias that bias "all"/"lora_only" trains: its original
// value is kept so that Drop restores the base model.
type trainedBias struct {
	key     string
	t, orig *ts.Tensor
}

// Adapter is a LoRA adapter injected into a model.
type Adapter struct {
	Config Config
	Layers map[string]*Linear      // by module name
	Saved  map[string]*bert.Linear // modules_to_save copies, by module name
	params []Param
	biases []trainedBias
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
// by a trainable copy. Each module takes its rank and alpha from rank_pattern
// and alpha_pattern; with use_dora its magnitude starts at the row norms of the
// base weight; with lora_bias lora_B gets a zero bias. Without target_modules it
// takes PEFT's default targets for the model type. The base model stays frozen.
//
// Inject is all-or-nothing: when it fails (a module already wrapped, a target
// that cannot take the adapter, no target matched, a LibTorch error), every
// module slot holds what it held before, the base biases are as they were and
// the tensors it made are freed.
func Inject(m *bert.Model, cfg Config) (*Adapter, error) {
	if len(cfg.TargetModules) == 0 && cfg.TargetRegex == "" {
		cfg.TargetModules = DefaultTargets(m.Config.ModelType)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if (m.DType != gotch.Float || m.Int8()) && (cfg.UseDoRA || cfg.Bias != "none") {
		// DoRA's norm is taken over the base weight, and bias all/lora_only
		// trains base tensors: both need them in float32.
		what := "use_dora"
		if !cfg.UseDoRA {
			what = fmt.Sprintf("bias %q", cfg.Bias)
		}
		dt := torch.DTypeName(m.DType)
		if m.Int8() {
			dt = "int8"
		}
		return nil, fmt.Errorf("%s needs a float32 base, and this one is %s: use dtype fp32 for this adapter", what, dt)
	}
	a := &Adapter{Config: cfg, Layers: map[string]*Linear{}, Saved: map[string]*bert.Linear{}, model: m}
	in := injection{a: a, replaced: map[string]Module{}}
	if err := in.run(); err != nil {
		in.rollback()
		return nil, err
	}
	sort.Slice(a.params, func(i, j int) bool { return a.params[i].Key < a.params[j].Key })
	return a, nil
}

// injection is one Inject call: the adapter being built and, for rollback,
// what each slot it replaced held before.
type injection struct {
	a        *Adapter
	replaced map[string]Module // module name -> the slot's value before
}

// run replaces the modules to save and the targets, then makes the base
// biases trainable; a LibTorch panic becomes an error.
func (in *injection) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("injecting the adapter: %v", r)
		}
	}()
	a, m, cfg := in.a, in.a.model, in.a.Config
	toSave := append([]string(nil), cfg.ModulesToSave...)
	if cfg.TaskType == "QUESTION_ANS" {
		for _, q := range QAModulesToSave {
			if !slices.Contains(toSave, q) {
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
	torch.NoGrad(func() {
		for _, name := range names {
			switch {
			case matchesAny(name, toSave):
				err = in.save(name, modules[name])
			case cfg.Targets(name):
				err = in.wrap(name, modules[name])
			}
			if err != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if len(a.Layers) == 0 {
		return fmt.Errorf("target_modules %s matched no module of this %s model (its linear modules end in %s)",
			a.targetsString(), m.Config.ModelType, moduleSuffixes(names))
	}
	return a.trainBiases()
}

// save replaces the module in slot by a trainable copy (modules_to_save).
func (in *injection) save(name string, slot *Module) error {
	base, ok := (*slot).(*bert.Linear)
	if !ok {
		return fmt.Errorf("module %q is already wrapped", name)
	}
	if base.Int8() {
		return fmt.Errorf("module %q to save is int8 in this base: use dtype fp32 for this adapter", name)
	}
	cp := &bert.Linear{Weight: trainableCopy(base.Weight)}
	in.a.Saved[name] = cp // from here on, rollback frees it
	cp.Bias = trainableCopy(base.Bias)
	in.replaced[name] = *slot
	*slot = cp
	in.a.add(keyPrefix+name+".weight", cp.Weight, true)
	in.a.add(keyPrefix+name+".bias", cp.Bias, false)
	return nil
}

// wrap replaces the linear in slot by a LoRA layer around it.
func (in *injection) wrap(name string, slot *Module) error {
	a, cfg := in.a, in.a.Config
	base, ok := (*slot).(*bert.Linear)
	if !ok {
		return fmt.Errorf("module %q is already wrapped", name)
	}
	if cfg.LoraBias && base.Bias == nil {
		return fmt.Errorf("lora_bias: module %q has no bias to merge lora_B's into", name)
	}
	out, inDim := base.Dims()
	r := int64(cfg.RankFor(name))
	dev := a.model.Device
	l := &Linear{Base: base, Scaling: cfg.ScalingFor(name), Dropout: cfg.LoraDropout}
	a.Layers[name] = l // from here on, rollback frees its tensors
	l.A = ts.MustZeros([]int64{r, inDim}, gotch.Float, dev)
	l.B = ts.MustZeros([]int64{out, r}, gotch.Float, dev)
	switch cfg.InitLoraWeights {
	case "gaussian":
		l.A.MustNormal_(0, 1/float64(r))
	case "false":
		// PEFT leaves nn.Linear's own init: kaiming-uniform for both.
		l.A.MustUniform_(-1/math.Sqrt(float64(inDim)), 1/math.Sqrt(float64(inDim)))
		l.B.MustUniform_(-1/math.Sqrt(float64(r)), 1/math.Sqrt(float64(r)))
	default:
		// kaiming_uniform_(a=√5): bound = gain·√(3/fan_in) = 1/√fan_in.
		l.A.MustUniform_(-1/math.Sqrt(float64(inDim)), 1/math.Sqrt(float64(inDim)))
	}
	l.A.MustRequiresGrad_(true)
	l.B.MustRequiresGrad_(true)
	a.add(keyPrefix+name+".lora_A.weight", l.A, true)
	a.add(keyPrefix+name+".lora_B.weight", l.B, true)
	if cfg.LoraBias {
		l.BiasB = ts.MustZeros([]int64{out}, gotch.Float, dev)
		l.BiasB.MustRequiresGrad_(true)
		a.add(keyPrefix+name+".lora_B.bias", l.BiasB, false)
	}
	if cfg.UseDoRA {
		l.Magnitude = l.weightNorm()
		l.Magnitude.MustRequiresGrad_(true)
		a.add(keyPrefix+name+".lora_magnitude_vector", l.Magnitude, true)
	}
	in.replaced[name] = *slot
	*slot = l
	return nil
}

// rollback puts back what every replaced slot held, restores the base biases
// made trainable and frees the tensors the injection made.
func (in *injection) rollback() {
	a := in.a
	mods := a.model.Modules()
	for name, prev := range in.replaced {
		*mods[name] = prev
	}
	for _, l := range a.Layers {
		l.drop()
	}
	for _, s := range a.Saved {
		for _, t := range []*ts.Tensor{s.Weight, s.Bias} {
			if t != nil {
				t.MustDrop()
			}
		}
	}
	a.restoreBiases()
	a.params, a.Layers, a.Saved = nil, map[string]*Linear{}, map[string]*bert.Linear{}
}

func (a *Adapter) targetsString() string {
	if a.Config.TargetRegex != "" {
		return fmt.Sprintf("%q", a.Config.TargetRegex)
	}
	return fmt.Sprint(a.Config.TargetModules)
}

// trainBiases makes base biases trainable as PEFT does: for "lora_only" the
// biases of the LoRA layers' base linears; for "all" every base parameter whose
// name holds "bias" (LayerNorm biases included) outside the modules to save.
// Keys are current PEFT's: a wrapped layer's bias is "<module>.base_layer.bias".
func (a *Adapter) trainBiases() error {
	if a.Config.Bias == "none" {
		return nil
	}
	wrapped := map[*ts.Tensor]string{}
	for name, l := range a.Layers {
		if l.Base.Bias != nil {
			wrapped[l.Base.Bias] = name
		}
	}
	for _, p := range a.model.Params() {
		name, isWrapped := wrapped[p.Tensor]
		key := keyPrefix + p.Name
		switch {
		case isWrapped:
			key = keyPrefix + name + ".base_layer.bias"
		case a.Config.Bias == "lora_only" || !strings.Contains(p.Name, "bias") || a.isSavedKey(key):
			continue
		}
		if p.Tensor.DType() != gotch.Float {
			return fmt.Errorf("bias %q training needs a float32 base (parameter %s)", a.Config.Bias, p.Name)
		}
		var orig *ts.Tensor
		torch.NoGrad(func() {
			orig = ts.MustZeros(p.Tensor.MustSize(), gotch.Float, p.Tensor.MustDevice())
			orig.Copy_(p.Tensor)
		})
		p.Tensor.MustRequiresGrad_(true)
		a.biases = append(a.biases, trainedBias{key: key, t: p.Tensor, orig: orig})
		a.add(key, p.Tensor, false)
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

// Drop frees the adapter's own tensors (LoRA weights and saved copies), puts
// the base modules back into the model and restores the base biases that bias
// "all"/"lora_only" trained. A merged adapter is unmerged first, except from
// a base quantized after the merge (bert.Model.Quantize), which keeps it.
func (a *Adapter) Drop() {
	for name, slot := range a.model.Modules() {
		switch v := (*slot).(type) {
		case *Linear:
			if a.Layers[name] == v {
				if v.Merged {
					_ = a.unmergeOne(v)
				}
				*slot = v.Base
				v.drop()
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
	a.restoreBiases()
	a.params, a.Layers, a.Saved = nil, map[string]*Linear{}, map[string]*bert.Linear{}
}

// restoreBiases puts back the base biases' values from before training and
// freezes them again.
func (a *Adapter) restoreBiases() {
	torch.NoGrad(func() {
		for _, b := range a.biases {
			b.t.MustRequiresGrad_(false)
			b.t.Copy_(b.orig)
			b.orig.MustDrop()
		}
	})
	a.biases = nil
}

func (l *Linear) drop() {
	for _, t := range []*ts.Tensor{l.A, l.B, l.BiasB, l.Magnitude, l.mergedNorm} {
		if t != nil {
			t.MustDrop()
		}
	}
	l.A, l.B, l.BiasB, l.Magnitude, l.mergedNorm = nil, nil, nil, nil, nil
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
