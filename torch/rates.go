package torch

import (
	"sync"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Rates is how fast this host runs one linear of a serving shape (384
// tokens, 768 → 768: distilbert-base's attention projections) in each
// precision, in GFLOP/s; 0 where not measured or not available. The CPU's
// flags say which precisions hold the numbers; only a measurement says which
// is fastest: with avx512_bf16 but no AMX, oneDNN's bf16 GEMMs can run slower
// than MKL's fp32 ones (docs/benchmarks.md).
type Rates struct {
	FP32 float64 `json:"fp32_gflops"`
	BF16 float64 `json:"bf16_gflops"`
	Int8 float64 `json:"int8_gflops"`
}

// Measured reports whether r holds a measurement (ProbeRates) rather than
// nothing.
func (r Rates) Measured() bool { return r.FP32 > 0 }

// probeShape is the linear ProbeRates times: tokens, out, in.
var probeShape = [3]int64{384, 768, 768}

// ProbeRates measures Rates on this host, on LibTorch's threads as they are
// set: fp32 through at::linear; bf16, where cpu runs it natively and this
// LibTorch packs linears, through PackedLinear (the serving path); int8,
// where its activations get 8 bits and this LibTorch has int8, through
// QLinear. Each is the best of five runs after two warm-ups: about a tenth
// of a second in all. A precision that fails is left at 0; so is every one
// if fp32 fails.
func ProbeRates(cpu CPUPrecision) Rates {
	var r Rates
	m, out, in := probeShape[0], probeShape[1], probeShape[2]
	flops := 2 * float64(m*out*in)
	w, err := probeTensor(out*in, []int64{out, in}, 0.05)
	if err != nil {
		return r
	}
	defer w.MustDrop()
	x, err := probeTensor(m*in, []int64{1, m, in}, 1)
	if err != nil {
		return r
	}
	defer x.MustDrop()
	b, err := probeTensor(out, []int64{out}, 0.1)
	if err != nil {
		return r
	}
	defer b.MustDrop()
	rate := func(run func() *ts.Tensor) float64 {
		best := time.Duration(0)
		err := Guard(func() {
			NoGrad(func() {
				for i := range 7 {
					t0 := time.Now()
					run().MustDrop()
					if d := time.Since(t0); i > 1 && (best == 0 || d < best) {
						best = d
					}
				}
			})
		})
		if err != nil || best <= 0 {
			return 0
		}
		return flops / best.Seconds() / 1e9
	}
	if r.FP32 = rate(func() *ts.Tensor { return ts.MustLinear(x, w, b) }); r.FP32 == 0 {
		return Rates{}
	}
	if cpu.BF16Native && PackedLinearAvailable() == nil {
		wb, xb, bb := w.MustTotype(gotch.BFloat16, false), x.MustTotype(gotch.BFloat16, false), b.MustTotype(gotch.BFloat16, false)
		if p, err := PackLinearWeight(wb); err == nil {
			r.BF16 = rate(func() *ts.Tensor { return PackedLinear(xb, p, bb) })
			p.MustDrop()
		}
		wb.MustDrop()
		xb.MustDrop()
		bb.MustDrop()
	}
	if cpu.Int8ActivationBits == 8 && Int8Available() == nil {
		if q, err := NewQLinear(w, b, 8); err == nil {
			r.Int8 = rate(func() *ts.Tensor { return q.Forward(x) })
			q.Drop()
		}
	}
	return r
}

// probeTensor is an fp32 CPU tensor of n values spread evenly over ±scale/2
// (the timing does not depend on them, only denormals would slow it).
func probeTensor(n int64, shape []int64, scale float32) (*ts.Tensor, error) {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * (float32((i*7919)%1000)/1000 - 0.5)
	}
	return FromFloat32(v, shape, gotch.Float, gotch.CPU)
}

var hostRates = sync.OnceValue(func() Rates { return ProbeRates(HostCPU()) })

// HostRates is ProbeRates of this host, measured on the first call.
func HostRates() Rates { return hostRates() }

// HostRatesFor is HostRates where dev is the CPU, and nothing measured on
// CUDA, where auto does not weigh the CPU's rates.
func HostRatesFor(dev gotch.Device) Rates {
	if dev.IsCuda() {
		return Rates{}
	}
	return HostRates()
}
