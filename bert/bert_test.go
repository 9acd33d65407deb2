package bert_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/verify"
)

func flat(v [][]int64) ([]int64, []int64) {
	var out []int64
	for _, r := range v {
		out = append(out, r...)
	}
	return out, []int64{int64(len(v)), int64(len(v[0]))}
}

func maxDiff(t *testing.T, got []float32, want [][]float64) float64 {
	var w []float64
	for _, r := range want {
		w = append(w, r...)
	}
	require.Len(t, got, len(w))
	m := 0.0
	for i := range w {
		m = math.Max(m, math.Abs(float64(got[i])-w[i]))
	}
	return m
}

func TestBaseLogitsMatchFixture(t *testing.T) {
	fx := testutil.Shared(t, "fixtures", "tiny-distilbert-qa")
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	for _, file := range []string{"model.safetensors", "pytorch_model.bin"} {
		w, err := bert.ReadCheckpoint(filepath.Join(fx, "base"))
		if file == "pytorch_model.bin" {
			w, err = bert.ReadTorchBin(filepath.Join(fx, "base", file))
		}
		require.NoError(t, err)
		require.Len(t, w, 38)
		cfg, err := bert.LoadConfig(filepath.Join(fx, "base"))
		require.NoError(t, err)
		m, err := bert.FromWeights(cfg, w, bert.LoadOptions{Device: gotch.CPU})
		require.NoError(t, err)
		assert.EqualValues(t, 998018, m.NumParams())
		for _, b := range exp.Batches {
			ids, shape := flat(b.InputIDs)
			mask, _ := flat(b.AttentionMask)
			in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
			var out bert.Output
			torch.NoGrad(func() { out = m.Forward(in, false) })
			ds := maxDiff(t, torch.ToFloat32(out.StartLogits), b.Base.Start)
			de := maxDiff(t, torch.ToFloat32(out.EndLogits), b.Base.End)
			assert.Less(t, ds, exp.Tolerance, "%s %s start", file, b.Name)
			assert.Less(t, de, exp.Tolerance, "%s %s end", file, b.Name)
			t.Logf("%s %s: max |Δ| start %.2e end %.2e", file, b.Name, ds, de)
			out.Drop()
			in.InputIDs.MustDrop()
			in.AttentionMask.MustDrop()
		}
		m.Drop()
	}
}

func TestSafetensorsAndBinAreIdentical(t *testing.T) {
	fx := testutil.Shared(t, "fixtures", "tiny-distilbert-qa", "base")
	a, err := bert.ReadSafetensors(filepath.Join(fx, "model.safetensors"))
	require.NoError(t, err)
	b, err := bert.ReadTorchBin(filepath.Join(fx, "pytorch_model.bin"))
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	for k, va := range a {
		vb, ok := b[k]
		require.True(t, ok, k)
		assert.Equal(t, va.Shape, vb.Shape, k)
		assert.Equal(t, va.Data, vb.Data, "%s: values must be bit-identical", k)
	}
}
