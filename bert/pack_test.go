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
	for _, mt := range []string{"distilbert", "bert"} {
		t.Run(mt, func(t *testing.T) {
			live := torch.LiveTensors()
			m := seeded(t, tinyConfig(mt), gotch.BFloat16, 3)
			in := randomInput(4, 2, 12)
			want := forward(m, in)
			n, params := m.NumParams(), len(m.Params())
			assert.False(t, m.Packed())

			require.NoError(t, m.Pack())
			assert.True(t, m.Packed())
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
			got := forward(m, in)
			d := maxDiff(got, want)
			t.Logf("%s: packed vs unpacked bf16 logits max |Δ| %.3g", mt, d)
			assert.Less(t, d, 1e-2, "the same bf16 GEMM, another weight layout")
			require.NoError(t, m.Pack(), "a second Pack does nothing")
			assert.Equal(t, got, forward(m, in))
			in.Drop()
			m.Drop()
			assert.Equal(t, live, torch.LiveTensors(), "the packed weights are freed with the model")
		})
	}
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
