package torch

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/testutil"
)

// needInt8 skips a test where this LibTorch cannot run int8 linears (no
// fbgemm: Debian's 1.13), after checking that the error says so.
func needInt8(t *testing.T) {
	t.Helper()
	if err := Int8Available(); err != nil {
		assert.Contains(t, err.Error(), "fbgemm")
		t.Skipf("int8 is not available in this LibTorch %s: %v", LibTorchVersion(), err)
	}
}

func normals(r *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * std)
	}
	return v
}

func mustTensor(t *testing.T, v []float32, shape ...int64) *ts.Tensor {
	t.Helper()
	x, err := FromFloat32(v, shape, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	return x
}

// int8Case is one linear quantized in loraqa and in the reference.
type int8Case struct {
	name    string
	out, in int
	bias    bool
	xShape  []int64
	engine  string // the reference's quantized engine
	outlier bool   // a few inputs 20× larger: a coarse activation scale
}

// TestQLinearMatchesQuantizeDynamic: the same weight, bias and input through
// loraqa's int8 linear and through torch.ao.quantization.quantize_dynamic
// (per_channel_dynamic_qconfig, the reference environment) give the same
// per-row scales, bit for bit, and outputs within 1e-5 — the same
// quantization, where the fp32 linear is 1e-3 or more away. PyTorch's default
// engine on x86 ("x86") gives what fbgemm gives.
func TestQLinearMatchesQuantizeDynamic(t *testing.T) {
	needInt8(t)
	cases := []int8Case{
		{name: "bias, 3-D input", out: 48, in: 96, bias: true, xShape: []int64{2, 5, 96}, engine: "fbgemm"},
		{name: "no bias, 2-D input", out: 40, in: 64, xShape: []int64{7, 64}, engine: "fbgemm"},
		{name: "outliers", out: 32, in: 128, bias: true, xShape: []int64{3, 128}, engine: "fbgemm", outlier: true},
		{name: "x86 engine", out: 48, in: 96, bias: true, xShape: []int64{2, 5, 96}, engine: "x86"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewSource(int64(100 + i)))
			w := normals(r, c.out*c.in, 0.05)
			w[3] = 0.4 // one row with a large weight: its own, coarser scale
			var b []float32
			if c.bias {
				b = normals(r, c.out, 0.1)
			}
			nx := int64(1)
			for _, d := range c.xShape {
				nx *= d
			}
			x := normals(r, int(nx), 1)
			if c.outlier {
				x[5], x[77] = 20, -15
			}
			rows := make([][]float32, c.out)
			for o := range rows {
				rows[o] = w[o*c.in : (o+1)*c.in]
			}
			req := map[string]any{"engine": c.engine, "linear": map[string]any{"weight": rows, "bias": b, "x": x, "x_shape": c.xShape}}
			var ref struct {
				Y       []float64 `json:"y"`
				YF32    []float64 `json:"y_fp32"`
				Scales  []float64 `json:"scales"`
				QWeight [][]int   `json:"qweight"`
				Torch   string    `json:"torch"`
				Engine  string    `json:"engine"`
			}
			testutil.RunRef(t, "int8_check.py", req, &ref)
			require.Equal(t, c.engine, ref.Engine)

			live := LiveTensors()
			wt, xt := mustTensor(t, w, int64(c.out), int64(c.in)), mustTensor(t, x, c.xShape...)
			var bt *ts.Tensor
			if c.bias {
				bt = mustTensor(t, b, int64(c.out))
			}
			q, scales, err := newQLinear(wt, bt, true)
			require.NoError(t, err)
			// The packed weight is a copy: the float32 weight can go.
			wt.MustDrop()
			if bt != nil {
				bt.MustDrop()
			}
			gotScales := ToFloat32(scales)
			scales.MustDrop()
			require.Len(t, gotScales, c.out)
			for o, s := range ref.Scales {
				assert.Equal(t, float32(s), gotScales[o], "scale of row %d", o)
			}
			assert.Equal(t, 127, ref.QWeight[0][3], "the row's largest weight takes the top of the int8 range")

			var y []float32
			require.NoError(t, Catch(func() {
				yt := q.Forward(xt)
				assert.Equal(t, append(append([]int64(nil), c.xShape[:len(c.xShape)-1]...), int64(c.out)), yt.MustSize())
				y = ToFloat32(yt)
				yt.MustDrop()
			}))
			require.Len(t, y, len(ref.Y))
			var dRef, dFP32 float64
			for k := range y {
				dRef = math.Max(dRef, math.Abs(float64(y[k])-ref.Y[k]))
				dFP32 = math.Max(dFP32, math.Abs(float64(y[k])-ref.YF32[k]))
			}
			t.Logf("torch %s (%s): max |Δ| to quantize_dynamic %.2e, to the fp32 linear %.2e", ref.Torch, c.engine, dRef, dFP32)
			assert.LessOrEqual(t, dRef, 1e-5, "int8 linear vs quantize_dynamic")
			assert.Greater(t, dFP32, 1e-3, "the control: the fp32 linear is farther away")
			assert.Less(t, dFP32, 0.2, "but not far: int8 keeps the product")

			xt.MustDrop()
			q.Drop()
			q.Drop() // a second Drop does nothing
			assert.Equal(t, live, LiveTensors(), "no tensor or packed weight outlives the case")
		})
	}
}

// TestQLinearErrors: what LibTorch refuses comes back as an *Error, and a
// dropped QLinear is an error too; nothing aborts the process.
func TestQLinearErrors(t *testing.T) {
	needInt8(t)
	live := LiveTensors()
	w := mustTensor(t, make([]float32, 12), 3, 4)
	w1 := mustTensor(t, make([]float32, 12), 12)
	b := mustTensor(t, make([]float32, 2), 2)

	_, err := NewQLinear(w1, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[out, in]")
	_, err = NewQLinear(w, b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bias must be [3]")

	q, err := NewQLinear(w, nil) // an all-zero weight: scales at float32's eps
	require.NoError(t, err)
	assert.Equal(t, int64(3), q.Out)
	assert.Equal(t, int64(4), q.In)
	for _, tc := range []struct {
		name  string
		x     func() *ts.Tensor
		wants string
	}{
		{"wrong width", func() *ts.Tensor { return ts.MustZeros([]int64{2, 5}, gotch.Float, gotch.CPU) }, ""},
		{"float64", func() *ts.Tensor { return ts.MustZeros([]int64{2, 4}, gotch.Double, gotch.CPU) }, "float32"},
	} {
		x := tc.x()
		err := Catch(func() { q.Forward(x).MustDrop() })
		var le *Error
		require.ErrorAs(t, err, &le, tc.name)
		if tc.wants != "" {
			assert.Contains(t, err.Error(), tc.wants, tc.name)
		}
		x.MustDrop()
	}
	x := ts.MustOnes([]int64{2, 4}, gotch.Float, gotch.CPU)
	require.NoError(t, Catch(func() {
		y := q.Forward(x)
		assert.Equal(t, []float32{0, 0, 0, 0, 0, 0}, ToFloat32(y), "zero weight, no bias")
		y.MustDrop()
	}))
	q.Drop()
	err = Catch(func() { q.Forward(x).MustDrop() })
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "after Drop"), err.Error())
	x.MustDrop()
	w.MustDrop()
	w1.MustDrop()
	b.MustDrop()
	assert.Equal(t, live, LiveTensors())
}
