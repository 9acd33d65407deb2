package bert_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

func tinyConfig(modelType string) bert.Config {
	c := bert.Config{ModelType: modelType, Dim: 32, Layers: 2, Heads: 4, Hidden: 64, VocabSize: 200, MaxPositions: 64,
		Activation: "gelu", LayerNormEps: 1e-12, InitRange: 0.2}
	if modelType == "bert" {
		c.TypeVocabSize = 2
	}
	return c
}

func randomInput(seed int64, B, L int) bert.Batch {
	r := rand.New(rand.NewSource(seed))
	ids, mask := make([]int64, B*L), make([]int64, B*L)
	for i := range ids {
		ids[i] = 1 + r.Int63n(199)
		mask[i] = 1
	}
	mask[B*L-1], mask[B*L-2] = 0, 0 // padding in the last row
	shape := []int64{int64(B), int64(L)}
	return bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
}

func forward(m *bert.Model, in bert.Batch) []float32 {
	var out bert.Output
	torch.NoGrad(func() { out = m.Forward(in, false) })
	defer out.Drop()
	return append(torch.ToFloat32(out.StartLogits), torch.ToFloat32(out.EndLogits)...)
}

// seeded is a model of cfg in dtype on the CPU, initialised from seed.
func seeded(t *testing.T, cfg bert.Config, dtype gotch.DType, seed int64) *bert.Model {
	t.Helper()
	torch.ManualSeed(seed)
	m, err := bert.New(cfg, gotch.CPU, dtype)
	require.NoError(t, err)
	m.Init()
	return m
}

// maxDiff is the largest |got[i] - want[i]|.
func maxDiff(got, want []float32) float64 {
	d := 0.0
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
	}
	return d
}

// needInt8 skips t where this LibTorch has no int8 kernels (fbgemm).
func needInt8(t *testing.T) {
	t.Helper()
	if err := torch.Int8Available(); err != nil {
		t.Skipf("int8 is not available in this LibTorch: %v", err)
	}
}

// eachModelType runs f as a subtest per model type of the tiny config
// (distilbert, bert) and checks, once f and its own Drops are done, that no
// tensor or packed weight made in the subtest outlives it.
func eachModelType(t *testing.T, f func(t *testing.T, mt string)) {
	for _, mt := range []string{"distilbert", "bert"} {
		t.Run(mt, func(t *testing.T) {
			live := torch.LiveTensors()
			t.Cleanup(func() { assert.Equal(t, live, torch.LiveTensors(), "the packed weights are freed with the model") })
			f(t, mt)
		})
	}
}

// conversion is an in-place conversion of a model's encoder linears
// (Quantize or Pack) as TestQuantize and TestPack check it, on each type of
// tiny model.
type conversion struct {
	name         string      // the method, for messages
	dtype        gotch.DType // the model's before
	seed, inSeed int64       // its weights', and the random input's
	convert      func(*bert.Model) error
	converted    func(*bert.Model) bool // Int8 or Packed
	logged       string                 // what the logged change compares
	// check checks the converted model m, given its NumParams (n) and
	// len(Params) from before and how far the conversion moved its logits.
	check func(t *testing.T, m *bert.Model, n int64, params int, d float64)
}

// run converts a seeded tiny model of each type, after checking it was not
// converted yet, checks that it is then, logs and checks how far its logits
// on a random input moved, checks that a second conversion changes nothing,
// and, with eachModelType, that Drop frees the packed weights.
func (c conversion) run(t *testing.T) {
	eachModelType(t, func(t *testing.T, mt string) {
		m := seeded(t, tinyConfig(mt), c.dtype, c.seed)
		in := randomInput(c.inSeed, 2, 12)
		want := forward(m, in)
		n, params := m.NumParams(), len(m.Params())
		assert.False(t, c.converted(m))

		require.NoError(t, c.convert(m))
		assert.True(t, c.converted(m))
		got := forward(m, in)
		d := maxDiff(got, want)
		t.Logf("%s: %s logits max |Δ| %.3g", mt, c.logged, d)
		c.check(t, m, n, params, d)

		require.NoError(t, c.convert(m), "a second %s does nothing", c.name)
		assert.Equal(t, got, forward(m, in))
		in.Drop()
		m.Drop()
	})
}

// TestQuantize: Quantize turns exactly the encoder's linears into int8 ones
// (their float32 weights freed and gone from Params; biases, embeddings,
// LayerNorms and the QA head kept), keeps NumParams, moves the logits by
// quantization error only, is idempotent, and Drop frees the packed weights.
func TestQuantize(t *testing.T) {
	needInt8(t)
	conversion{
		name: "Quantize", dtype: gotch.Float, seed: 7, inSeed: 3,
		convert: (*bert.Model).Quantize, converted: (*bert.Model).Int8, logged: "int8 vs fp32",
		check: func(t *testing.T, m *bert.Model, n int64, params int, d float64) {
			assert.Equal(t, n, m.NumParams(), "the int8 weights still count")
			assert.Len(t, m.Params(), params-6*2-1, "six linear weights per layer and the word embeddings left the float32 parameters")
			assert.Nil(t, m.WordEmb, "the word embeddings are int8")
			for name, slot := range m.Modules() {
				l := (*slot).(*bert.Linear)
				out, inDim := l.Dims()
				if name == "qa_outputs" {
					assert.False(t, l.Int8(), name)
					assert.Equal(t, []int64{2, 32}, []int64{out, inDim})
					continue
				}
				assert.True(t, l.Int8(), name)
				assert.Nil(t, l.Weight, name)
				assert.NotNil(t, l.Bias, "%s: the bias stays float32", name)
				assert.Contains(t, [][]int64{{32, 32}, {64, 32}, {32, 64}}, []int64{out, inDim}, name)
			}
			assert.Greater(t, d, 1e-5, "the linears really are int8")
			assert.Less(t, d, 0.25, "and close to float32")
		},
	}.run(t)
}

// TestNewInt8: a model made int8 by New quantizes its linears as Init fills
// them, and is then the model that Init and Quantize make: the same
// parameters, the same logits bit for bit. Before Init it refuses Quantize,
// and its Drop frees everything at any point.
func TestNewInt8(t *testing.T) {
	needInt8(t)
	eachModelType(t, func(t *testing.T, mt string) {
		want := seeded(t, tinyConfig(mt), gotch.Float, 11)
		require.NoError(t, want.Quantize())

		torch.ManualSeed(11)
		got, err := bert.New(tinyConfig(mt), gotch.CPU, gotch.Int8)
		require.NoError(t, err)
		assert.False(t, got.Int8(), "not before its weights are in")
		assert.ErrorContains(t, got.Quantize(), "not in yet")
		got.Init()
		assert.True(t, got.Int8())
		assert.Equal(t, gotch.Float, got.DType)
		assert.Equal(t, want.NumParams(), got.NumParams())
		var names, wantNames []string
		for _, p := range got.Params() {
			names = append(names, p.Name)
		}
		for _, p := range want.Params() {
			wantNames = append(wantNames, p.Name)
		}
		assert.Equal(t, wantNames, names)
		in := randomInput(5, 2, 12)
		assert.Equal(t, forward(want, in), forward(got, in))
		in.Drop()
		want.Drop()
		got.Drop()

		unfilled, err := bert.New(tinyConfig(mt), gotch.CPU, gotch.Int8)
		require.NoError(t, err)
		unfilled.Drop()
	})
	_, err := bert.New(tinyConfig("bert"), gotch.Device{Name: "cuda", Value: 0}, gotch.Int8)
	assert.ErrorContains(t, err, "int8 runs on the CPU only")
}

func TestQuantizeRefuses(t *testing.T) {
	m, err := bert.New(tinyConfig("distilbert"), gotch.CPU, gotch.BFloat16)
	require.NoError(t, err)
	defer m.Drop()
	assert.ErrorContains(t, m.Quantize(), "the base is bf16; quantize a float32 one")
	assert.False(t, m.Int8())
}
