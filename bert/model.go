package bert

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// Module is a layer that maps [.., in] to [.., out]. A Linear is one; peft wraps
// a Linear in a LoRA layer that is one too.
type Module interface {
	Forward(x *ts.Tensor, train bool) *ts.Tensor
}

// Linear is y = x·Wᵀ + b with HF's [out, in] weight layout. Model.Quantize
// replaces the weight of the encoder's linears by an int8 one (torch.QLinear),
// Model.Pack by one in oneDNN's layout: Weight is nil then, and Int8 or
// Packed reports it.
type Linear struct {
	Weight, Bias *ts.Tensor
	q            *torch.QLinear
	packed       *ts.Tensor // the weight in oneDNN's layout (Model.Pack)
	out, in      int64      // the weight's shape, once Weight is gone
}

// Forward computes x·Wᵀ + b; the caller owns the result.
func (l *Linear) Forward(x *ts.Tensor, _ bool) *ts.Tensor {
	switch {
	case l.q != nil:
		return l.q.Forward(x)
	case l.packed != nil:
		return torch.PackedLinear(x, l.packed, l.Bias)
	}
	return ts.MustLinear(x, l.Weight, l.Bias)
}

// Int8 reports whether the weight is int8 (Model.Quantize); Weight is nil then.
func (l *Linear) Int8() bool { return l.q != nil }

// Packed reports whether the weight is packed for inference (Model.Pack);
// Weight is nil then.
func (l *Linear) Packed() bool { return l.packed != nil }

// Dims are the weight's shape, [out, in], whatever its dtype.
func (l *Linear) Dims() (out, in int64) {
	switch {
	case l.q != nil:
		return l.q.Out, l.q.In
	case l.packed != nil:
		return l.out, l.in
	}
	size := l.Weight.MustSize()
	return size[0], size[1]
}

// LayerNorm holds a LayerNorm's affine parameters.
type LayerNorm struct {
	Weight, Bias *ts.Tensor
	Eps          float64
}

// Forward normalises over the last dimension.
func (n *LayerNorm) Forward(x *ts.Tensor) *ts.Tensor {
	shape := n.Weight.MustSize()
	return ts.MustLayerNorm(x, shape, n.Weight, n.Bias, n.Eps, false)
}

// Block is one transformer layer. Q, K, V, O, FF1 and FF2 are Module slots that
// peft may replace with LoRA layers.
type Block struct {
	Q, K, V, O Module
	AttnNorm   *LayerNorm
	FF1, FF2   Module
	OutNorm    *LayerNorm
}

// Param is one named parameter of the base model.
type Param struct {
	Name   string
	Tensor *ts.Tensor
}

// Model is a QA model: encoder plus the qa_outputs head.
type Model struct {
	Config Config
	Device gotch.Device
	// DType is the dtype of the frozen base weights: after Quantize (Int8)
	// float32, the dtype of all but the encoder's linears.
	DType gotch.DType

	WordEmb, PosEmb, TypeEmb *ts.Tensor // TypeEmb is nil for DistilBERT
	EmbNorm                  *LayerNorm
	Blocks                   []*Block
	QA                       Module // [dim] -> 2 (start, end)

	params  []Param
	modules map[string]*Module
	linears []namedLinear     // the encoder's linears, which Quantize quantizes
	qWord   *torch.QEmbedding // the word embeddings in 8 bits, after Quantize (WordEmb is nil then)
	int8    bool              // Quantize ran
	qParams int64             // the values of the int8 and packed weights, for NumParams
	// pendingBits, when not 0, makes Init and FromWeights quantize each
	// encoder linear (with activations of these bits) as soon as its weight
	// and bias are filled, so the float32 weights never all exist at once.
	pendingBits int
	freed       map[*ts.Tensor]bool // float32 weights freed for int8 ones, until finishInt8
}

// Names are a model type's HF parameter names.
type names struct {
	word, pos, typ, embNorm string
	layer                   func(i int) string
	q, k, v, o, attnNorm    string
	ff1, ff2, outNorm       string
}

// namesFor gives a model type's names. BERT and RoBERTa share the layout
// under their own prefix (BertModel's "bert.", RobertaModel's "roberta.").
func namesFor(modelType string) names {
	if modelType == "bert" || modelType == "roberta" {
		pre := modelType + "."
		return names{
			word: pre + "embeddings.word_embeddings", pos: pre + "embeddings.position_embeddings",
			typ: pre + "embeddings.token_type_embeddings", embNorm: pre + "embeddings.LayerNorm",
			layer: func(i int) string { return fmt.Sprintf("%sencoder.layer.%d.", pre, i) },
			q:     "attention.self.query", k: "attention.self.key", v: "attention.self.value",
			o: "attention.output.dense", attnNorm: "attention.output.LayerNorm",
			ff1: "intermediate.dense", ff2: "output.dense", outNorm: "output.LayerNorm",
		}
	}
	return names{
		word: "distilbert.embeddings.word_embeddings", pos: "distilbert.embeddings.position_embeddings",
		embNorm: "distilbert.embeddings.LayerNorm",
		layer:   func(i int) string { return fmt.Sprintf("distilbert.transformer.layer.%d.", i) },
		q:       "attention.q_lin", k: "attention.k_lin", v: "attention.v_lin", o: "attention.out_lin",
		attnNorm: "sa_layer_norm", ff1: "ffn.lin1", ff2: "ffn.lin2", outNorm: "output_layer_norm",
	}
}

// New builds a model with every parameter allocated (zeros) on dev in dtype,
// except the LayerNorms and the qa_outputs head, which stay float32 (with a
// half-precision base the hidden states between blocks are float32, as under
// autocast; the LayerNorms are 0.03% of the weights). Load or Init fills the values.
//
// With dtype gotch.Int8 (CPU only) the base is float32 and the encoder's
// linears and the word embeddings become int8 as Init or Load fills them,
// one at a time, with the host CPU's activation bits (Model.Quantize says
// what int8 is): their float32 tensors are allocated but never all filled,
// so they take no memory at once. Until then the model must not run.
func New(cfg Config, dev gotch.Device, dtype gotch.DType) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pendingBits := 0
	if dtype == gotch.Int8 {
		if err := canQuantize(dev, gotch.Float); err != nil {
			return nil, err
		}
		dtype, pendingBits = gotch.Float, torch.HostCPU().Int8ActivationBits
	}
	m := &Model{Config: cfg, Device: dev, DType: dtype, modules: map[string]*Module{}, pendingBits: pendingBits}
	n := namesFor(cfg.ModelType)
	param := func(name string, dt gotch.DType, shape ...int64) *ts.Tensor {
		t := ts.MustZeros(shape, dt, dev)
		m.params = append(m.params, Param{Name: name, Tensor: t})
		return t
	}
	quantized := param // what int8 replaces: the encoder's linear weights and the word embeddings
	if pendingBits != 0 {
		// Allocated, not written: the pages are not resident until Init or
		// Load fills the tensor, and it is freed right after quantizing.
		quantized = func(name string, dt gotch.DType, shape ...int64) *ts.Tensor {
			t := ts.MustEmpty(shape, dt, dev)
			m.params = append(m.params, Param{Name: name, Tensor: t})
			return t
		}
	}
	linear := func(name string, out, in int64) *Linear {
		l := &Linear{Weight: quantized(name+".weight", dtype, out, in), Bias: param(name+".bias", dtype, out)}
		m.linears = append(m.linears, namedLinear{name, l})
		return l
	}
	norm := func(name string) *LayerNorm {
		return &LayerNorm{Weight: param(name+".weight", gotch.Float, cfg.Dim), Bias: param(name+".bias", gotch.Float, cfg.Dim), Eps: cfg.LayerNormEps}
	}
	m.WordEmb = quantized(n.word+".weight", dtype, cfg.VocabSize, cfg.Dim)
	m.PosEmb = param(n.pos+".weight", dtype, cfg.MaxPositions, cfg.Dim)
	if cfg.TypeVocabSize > 0 {
		m.TypeEmb = param(n.typ+".weight", dtype, cfg.TypeVocabSize, cfg.Dim)
	}
	m.EmbNorm = norm(n.embNorm)
	for i := 0; i < int(cfg.Layers); i++ {
		p := n.layer(i)
		b := &Block{
			Q: linear(p+n.q, cfg.Dim, cfg.Dim), K: linear(p+n.k, cfg.Dim, cfg.Dim),
			V: linear(p+n.v, cfg.Dim, cfg.Dim), O: linear(p+n.o, cfg.Dim, cfg.Dim),
			AttnNorm: norm(p + n.attnNorm),
			FF1:      linear(p+n.ff1, cfg.Hidden, cfg.Dim), FF2: linear(p+n.ff2, cfg.Dim, cfg.Hidden),
			OutNorm: norm(p + n.outNorm),
		}
		m.modules[p+n.q], m.modules[p+n.k], m.modules[p+n.v], m.modules[p+n.o] = &b.Q, &b.K, &b.V, &b.O
		m.modules[p+n.ff1], m.modules[p+n.ff2] = &b.FF1, &b.FF2
		m.Blocks = append(m.Blocks, b)
	}
	// The QA head stays float32: it is trained (PEFT's modules_to_save) and small.
	m.QA = &Linear{Weight: param("qa_outputs.weight", gotch.Float, 2, cfg.Dim), Bias: param("qa_outputs.bias", gotch.Float, 2)}
	m.modules["qa_outputs"] = &m.QA
	return m, nil
}

// Params lists the base model's parameters with their HF names, in model order.
func (m *Model) Params() []Param { return m.params }

// Param returns the named base parameter, or nil.
func (m *Model) Param(name string) *ts.Tensor {
	for _, p := range m.params {
		if p.Name == name {
			return p.Tensor
		}
	}
	return nil
}

// Modules maps every linear module's HF name (e.g.
// "distilbert.transformer.layer.0.attention.q_lin", "qa_outputs") to its slot,
// which peft may replace.
func (m *Model) Modules() map[string]*Module { return m.modules }

// NumParams counts the base parameters (the int8 weights too).
func (m *Model) NumParams() int64 {
	n := m.qParams
	for _, p := range m.params {
		n += int64(p.Tensor.Numel())
	}
	return n
}

// Drop frees every base parameter and int8 weight.
func (m *Model) Drop() {
	for _, p := range m.params {
		p.Tensor.MustDrop()
	}
	for _, nl := range m.linears {
		if nl.l.q != nil {
			nl.l.q.Drop()
			nl.l.q = nil
		}
	}
	if m.qWord != nil {
		m.qWord.Drop()
		m.qWord = nil
	}
	for _, nl := range m.linears {
		if nl.l.packed != nil {
			nl.l.packed.MustDrop()
			nl.l.packed = nil
		}
	}
	m.params = nil
}

// Init fills the parameters as HF's _init_weights does: linear and embedding
// weights N(0, initializer_range), biases 0, LayerNorm 1 and 0, the padding rows
// 0, and sinusoidal position embeddings where the config asks for them. A
// model made int8 by New quantizes its linears as they are filled; like
// gotch's Must operations, Init panics with LibTorch's error if that fails.
func (m *Model) Init() {
	noGrad(func() {
		for i, p := range m.params {
			switch {
			case endsWith(p.Name, "LayerNorm.weight") || endsWith(p.Name, "layer_norm.weight"):
				p.Tensor.MustFill_(ts.FloatScalar(1))
			case endsWith(p.Name, ".bias"):
				p.Tensor.MustZero_()
			default:
				p.Tensor.MustNormal_(0, m.Config.InitRange)
			}
			if p.Tensor == m.WordEmb {
				pad := m.WordEmb.MustSelect(0, m.Config.PadTokenID, false)
				pad.MustZero_()
				pad.MustDrop()
			}
			if err := m.filled(i); err != nil {
				panic(&ts.LoraqaError{Err: err})
			}
		}
		m.finishInt8()
		if m.Config.PaddedPositions() { // RoBERTa's position table has a padding row too
			pad := m.PosEmb.MustSelect(0, m.Config.PadTokenID, false)
			pad.MustZero_()
			pad.MustDrop()
		}
		if m.Config.Sinusoidal {
			s := sinusoidal(m.Config.MaxPositions, m.Config.Dim)
			t := ts.MustOfSlice(s).MustView([]int64{m.Config.MaxPositions, m.Config.Dim}, true).MustTotype(m.DType, true).MustTo(m.Device, true)
			m.PosEmb.Copy_(t)
			t.MustDrop()
		}
	})
}

// sinusoidal is HF DistilBERT's create_sinusoidal_embeddings table.
func sinusoidal(n, dim int64) []float32 {
	out := make([]float32, n*dim)
	for pos := int64(0); pos < n; pos++ {
		for j := int64(0); j < dim; j++ {
			angle := float64(pos) / math.Pow(10000, float64(2*(j/2))/float64(dim))
			if j%2 == 0 {
				out[pos*dim+j] = float32(math.Sin(angle))
			} else {
				out[pos*dim+j] = float32(math.Cos(angle))
			}
		}
	}
	return out
}

func endsWith(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
