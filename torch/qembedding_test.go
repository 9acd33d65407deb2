package torch

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/testutil"
)

// TestQEmbeddingMatchesQuantizeDynamic: the same table and ids through
// loraqa's 8-bit embedding and through torch.ao's quantized Embedding
// (quantize_dynamic with float_qparams_weight_only_qconfig, the reference
// environment) give the same rows to float32 rounding, where the float32
// table is 1e-3 or more away; a constant row (scale 1) comes back exactly.
func TestQEmbeddingMatchesQuantizeDynamic(t *testing.T) {
	needInt8(t)
	const rows, dim = 50, 24
	r := rand.New(rand.NewSource(5))
	table := normals(r, rows*dim, 0.05)
	for j := 0; j < dim; j++ {
		table[7*dim+j] = 0.25 // a constant row: max = min, scale falls back to 1
	}
	table[3*dim+2] = 1.5 // an outlier: its row gets a coarser scale
	ids := []int64{0, 3, 7, 49, 3, 1, 0, 12}
	tab := make([][]float32, rows)
	for i := range tab {
		tab[i] = table[i*dim : (i+1)*dim]
	}
	var ref struct {
		Y    []float64 `json:"y"`
		YF32 []float64 `json:"y_fp32"`
	}
	testutil.RunRef(t, "int8_check.py", map[string]any{"embedding": map[string]any{"table": tab, "ids": [][]int64{ids[:4], ids[4:]}}}, &ref)

	live := LiveTensors()
	tt := mustTensor(t, table, rows, dim)
	q, err := NewQEmbedding(tt, true)
	require.NoError(t, err)
	assert.Equal(t, live, LiveTensors()-1, "the consumed table is gone: only the packed one is left")
	assert.Equal(t, [2]int64{rows, dim}, [2]int64{q.Rows, q.Dim})
	idt := FromInt64(ids, []int64{2, 4}, gotch.CPU)
	var y []float32
	require.NoError(t, Catch(func() {
		yt := q.Forward(idt)
		assert.Equal(t, []int64{2, 4, dim}, yt.MustSize())
		y = ToFloat32(yt)
		yt.MustDrop()
	}))
	require.Len(t, y, len(ref.Y))
	var dRef, dFP32 float64
	for k := range y {
		dRef = math.Max(dRef, math.Abs(float64(y[k])-ref.Y[k]))
		dFP32 = math.Max(dFP32, math.Abs(float64(y[k])-ref.YF32[k]))
	}
	t.Logf("max |Δ| to torch.ao's quantized Embedding %.2e, to the float32 table %.2e", dRef, dFP32)
	assert.LessOrEqual(t, dRef, 1e-7)
	assert.Greater(t, dFP32, 1e-3, "the control: the float32 table is farther away")
	for j := 0; j < dim; j++ {
		assert.Equal(t, float32(0.25), y[2*dim+j], "the constant row")
	}

	bad := FromInt64([]int64{0}, []int64{1}, gotch.CPU)
	f := ts.MustZeros([]int64{1}, gotch.Float, gotch.CPU)
	err = Catch(func() { q.Forward(f).MustDrop() })
	assert.ErrorContains(t, err, "ids must be int64 or int32")
	q.Drop()
	q.Drop()
	err = Catch(func() { q.Forward(bad).MustDrop() })
	assert.ErrorContains(t, err, "int8 embedding used after Drop")
	bad.MustDrop()
	f.MustDrop()
	idt.MustDrop()
	assert.Equal(t, live, LiveTensors(), "no tensor or packed table outlives the test")
}
