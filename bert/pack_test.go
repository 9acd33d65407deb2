package bert_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

// TestPack: Pack turns a bf16 model's encoder linears into oneDNN-packed
// ones (their bf16 weights freed and gone from Params; NumParams and Dims
// kept) whose logits are the unpacked model's, to bf16 rounding; a second
// Pack does nothing, Drop frees the packed weights, and fp32 and int8 models
// are refused.
func TestPack(t *testing.T) {
	if err := torch.PackedLinearAvailable(); err != nil {
		t.Skipf("no prepacked linears in this LibTorch: %v", err)
	}
	conversion{
		name: "Pack", dtype: gotch.BFloat16, seed: 3, inSeed: 4,
		convert: (*bert.Model).Pack, converted: (*bert.Model).Packed, logged: "packed vs unpacked bf16",
		check: func(t *testing.T, m *bert.Model, n int64, params int, d float64) {
			assert.Equal(t, n, m.NumParams())
			assert.Len(t, m.Params(), params-6*2, "six linear weights per layer left the parameters")
			for name, slot := range m.Modules() {
				l := (*slot).(*bert.Linear)
				assert.Equal(t, name != "qa_outputs", l.Packed(), name)
				if l.Packed() {
					assert.Nil(t, l.Weight, name)
					out, inDim := l.Dims()
					assert.Contains(t, [][]int64{{32, 32}, {64, 32}, {32, 64}}, []int64{out, inDim}, name)
				}
			}
			assert.Less(t, d, 1e-2, "the same bf16 GEMM, another weight layout")
		},
	}.run(t)
	f, err := bert.New(tinyConfig("bert"), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer f.Drop()
	assert.ErrorContains(t, f.Pack(), "the model is fp32 on cpu; packed linears are for bf16 on the CPU")
	if torch.Int8Available() == nil {
		q, err := bert.New(tinyConfig("bert"), gotch.CPU, gotch.Int8)
		require.NoError(t, err)
		q.Init()
		defer q.Drop()
		assert.ErrorContains(t, q.Pack(), "the model is int8")
	}
}
