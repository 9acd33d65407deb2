package bert

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// TestUnmaskedAttention: without padding, inference on the CPU calls
// scaled_dot_product_attention with no mask (as transformers does), and
// the logits are the explicit path's (baddbmm, softmax, bmm with the
// mask) to float32 rounding, in both model layouts; a batch with padding
// keeps the mask.
func TestUnmaskedAttention(t *testing.T) {
	if !sdpa {
		t.Skipf("LibTorch %s has no scaled_dot_product_attention", torch.LibTorchVersion())
	}
	for _, mt := range []string{"distilbert", "bert"} {
		t.Run(mt, func(t *testing.T) {
			cfg := Config{ModelType: mt, Dim: 32, Layers: 2, Heads: 4, Hidden: 64, VocabSize: 200, MaxPositions: 64,
				Activation: "gelu", LayerNormEps: 1e-12, InitRange: 0.2}
			if mt == "bert" {
				cfg.TypeVocabSize = 2
			}
			torch.ManualSeed(5)
			m, err := New(cfg, gotch.CPU, gotch.Float)
			require.NoError(t, err)
			defer m.Drop()
			m.Init()
			ids, ones, padded := make([]int64, 24), make([]int64, 24), make([]int64, 24)
			for i := range ids {
				ids[i], ones[i], padded[i] = int64(1+(i*37)%199), 1, 1
			}
			padded[23] = 0
			for _, tc := range []struct {
				name string
				mask []int64
			}{{"no padding", ones}, {"padding", padded}} {
				b := Batch{InputIDs: torch.FromInt64(ids, []int64{2, 12}, gotch.CPU), AttentionMask: torch.FromInt64(tc.mask, []int64{2, 12}, gotch.CPU)}
				assert.Equal(t, tc.name == "no padding", noPadding(b.AttentionMask))
				logits := func() []float32 {
					var out Output
					torch.NoGrad(func() { out = m.Forward(b, false) })
					defer out.Drop()
					return append(torch.ToFloat32(out.StartLogits), torch.ToFloat32(out.EndLogits)...)
				}
				got := logits()
				sdpa = false // the explicit path, with the mask
				want := logits()
				sdpa = true
				d := 0.0
				for i := range got {
					d = math.Max(d, math.Abs(float64(got[i]-want[i])))
				}
				t.Logf("%s: fused vs explicit logits max |Δ| %.3g", tc.name, d)
				assert.Less(t, d, 1e-5, tc.name)
				b.Drop()
			}
		})
	}
}
