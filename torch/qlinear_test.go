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
	bits    int    // the activations' bits: 7 (reduce_range, torch.ao's) or 8
}

// TestQLinearMatchesQuantizeDynamic: the same weight, bias and input through
// loraqa's int8 linear and through torch.ao.quantization.quantize_dynamic
// (per_channel_dynamic_qconfig, the reference environment) give the same
// per-row scales, bit for bit, and outputs within 1e-5 — the same
// quantization, where the fp32 linear is 1e-3 or more away. PyTorch's default
// engine on x86 ("x86") gives what fbgemm gives. With 8-bit activations the
// reference is the op torch.ao calls, with reduce_range=False.
func TestQLinearMatchesQuantizeDynamic(t *testing.T) {
	needInt8(t)
	cases := []int8Case{
		{name: "bias, 3-D input", out: 48, in: 96, bias: true, xShape: []int64{2, 5, 96}, engine: "fbgemm", bits: 7},
		{name: "no bias, 2-D input", out: 40, in: 64, xShape: []int64{7, 64}, engine: "fbgemm", bits: 7},
		{name: "outliers", out: 32, in: 128, bias: true, xShape: []int64{3, 128}, engine: "fbgemm", outlier: true, bits: 7},
		{name: "x86 engine", out: 48, in: 96, bias: true, xShape: []int64{2, 5, 96}, engine: "x86", bits: 7},
		{name: "8-bit activations", out: 48, in: 96, bias: true, xShape: []int64{2, 5, 96}, engine: "fbgemm", bits: 8},
		{name: "8-bit activations, outliers", out: 32, in: 128, bias: true, xShape: []int64{3, 128}, engine: "fbgemm", outlier: true, bits: 8},
		{name: "8-bit activations, x86 engine", out: 40, in: 64, xShape: []int64{7, 64}, engine: "x86", bits: 8},
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
			req := map[string]any{"engine": c.engine, "reduce_range": c.bits == 7, "linear": map[string]any{"weight": rows, "bias": b, "x": x, "x_shape": c.xShape}}
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
			q, scales, err := newQLinear(wt, bt, c.bits, true)
			require.NoError(t, err)
			assert.Equal(t, c.bits, q.ActBits)
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

	_, err := NewQLinear(w1, nil, 7)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[out, in]")
	_, err = NewQLinear(w, b, 7)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bias must be [3]")
	_, err = NewQLinear(w, nil, 4)
	require.EqualError(t, err, "int8 linear: activations of 4 bits; 7 or 8")

	q, err := NewQLinear(w, nil, 8) // an all-zero weight: scales at float32's eps
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
	assert.ErrorContains(t, err, "int8 linear used after Drop")
	x.MustDrop()
	w.MustDrop()
	w1.MustDrop()
	b.MustDrop()
	assert.Equal(t, live, LiveTensors())
}

// TestQLinearExactAtHostBits: at the activation bits loraqa picks for this
// CPU (Int8ActivationBits), an int8 linear is exact integer arithmetic even
// on inputs built to saturate int16 pair sums (every weight at ±127, every
// activation high): 7 bits cannot saturate, and 8 bits are picked only where
// VNNI sums in int32.
func TestQLinearExactAtHostBits(t *testing.T) {
	needInt8(t)
	const out, in = 32, 64
	bits := HostCPU().Int8ActivationBits
	r := rand.New(rand.NewSource(1))
	w := make([]float32, out*in)
	for i := range w {
		w[i] = 0.05 // each row's scale is 0.05/127.5: every weight quantizes to ±127
		if r.Intn(4) == 0 {
			w[i] = -0.05
		}
	}
	for _, m := range []int{1, 20, 48, 128} {
		x := make([]float32, m*in)
		for i := range x {
			x[i] = float32(r.Float64()*2 - 0.2) // mostly positive: activations near the top of the range
		}
		y := qlinearForward(t, w, x, out, in, bits)
		exact := exactQLinear(w, x, out, in, bits)
		worst := 0.0
		for i := range y {
			worst = math.Max(worst, math.Abs(exact[i]-float64(y[i])))
		}
		assert.Less(t, worst, 1e-5, "%d rows, %d-bit activations on %s: integer arithmetic", m, bits, HostCPU().Model)
	}
}

// TestQLinearEightBitsCloser: 8-bit activations hold a linear's product
// closer to float32 than torch.ao's 7 (the reason to use them where VNNI
// allows).
func TestQLinearEightBitsCloser(t *testing.T) {
	needInt8(t)
	const out, in, m = 64, 128, 48
	r := rand.New(rand.NewSource(2))
	w, x := normals(r, out*in, 0.05), normals(r, m*in, 1)
	mean := map[int]float64{}
	for _, bits := range []int{7, 8} {
		for i, v := range qlinearForward(t, w, x, out, in, bits) {
			var f float64
			for k := 0; k < in; k++ {
				f += float64(x[i/out*in+k]) * float64(w[i%out*in+k])
			}
			mean[bits] += math.Abs(f-float64(v)) / float64(m*out)
		}
	}
	t.Logf("mean |Δ| to float32: 7-bit %.3g, 8-bit %.3g", mean[7], mean[8])
	assert.Less(t, mean[8], 0.75*mean[7])
}

// qlinearForward is x [m, in] through w [out, in] as an int8 linear with
// bits-bit activations.
func qlinearForward(t *testing.T, w, x []float32, out, in, bits int) []float32 {
	t.Helper()
	wt, xt := mustTensor(t, w, int64(out), int64(in)), mustTensor(t, x, int64(len(x)/in), int64(in))
	defer wt.MustDrop()
	defer xt.MustDrop()
	q, err := NewQLinear(wt, nil, bits)
	require.NoError(t, err)
	defer q.Drop()
	var y []float32
	require.NoError(t, Catch(func() { yt := q.Forward(xt); y = ToFloat32(yt); yt.MustDrop() }))
	return y
}

// exactQLinear is y = x·Wᵀ through int8 weights (per row, symmetric, as
// NewQLinear) and bits-bit activations (per tensor, affine over min(x, 0)
// and max(x, 0)), summed without saturation.
func exactQLinear(w, x []float32, out, in, bits int) []float64 {
	qmax := float64(int(1)<<bits - 1)
	mn, mx := 0.0, 0.0
	for _, v := range x {
		mn, mx = math.Min(mn, float64(v)), math.Max(mx, float64(v))
	}
	s := (mx - mn) / qmax
	zp := math.Round(-mn / s)
	ws := make([]float64, out)
	for o := range ws {
		for k := 0; k < in; k++ {
			ws[o] = math.Max(ws[o], math.Abs(float64(w[o*in+k])))
		}
		ws[o] /= 127.5
	}
	m := len(x) / in
	y := make([]float64, m*out)
	for i := 0; i < m; i++ {
		for o := 0; o < out; o++ {
			var acc float64
			for k := 0; k < in; k++ {
				xq := math.Max(0, math.Min(qmax, math.Round(float64(x[i*in+k])/s)+zp))
				wq := math.Max(-128, math.Min(127, math.RoundToEven(float64(w[o*in+k])/ws[o])))
				acc += (xq - zp) * wq
			}
			y[i*out+o] = acc * s * ws[o]
		}
	}
	return y
}
