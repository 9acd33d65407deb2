package torch_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// cpuinfo texts of three machine kinds (first processor, flags cut to what
// matters plus a few others).
const (
	zen3CPUInfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
	zen4CPUInfo = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 gfni\n"
	sprCPUInfo  = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 avx512f avx512_vnni avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)

func TestParseCPUInfo(t *testing.T) {
	for _, c := range []struct {
		name, text      string
		model           string
		bf16, int8, amx bool
		actBits         int
		flags           []string
	}{
		{"zen3", zen3CPUInfo, "AMD EPYC 7B13", false, false, false, 7, []string{"avx2"}},
		{"zen4", zen4CPUInfo, "AMD EPYC 9B14", true, true, false, 8, []string{"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}},
		{"sapphire rapids", sprCPUInfo, "Intel(R) Xeon(R) Platinum 8481C", true, true, true, 8,
			[]string{"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}},
		{"alder lake (avx_vnni only: fbgemm sums in int16)", "model name\t: Intel(R) Core(TM) i7-12700\nflags\t: avx2 avx_vnni\n",
			"Intel(R) Core(TM) i7-12700", false, true, false, 7, []string{"avx2", "avx_vnni"}},
		{"empty", "", "", false, false, false, 7, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := torch.ParseCPUInfo(c.text)
			assert.Equal(t, c.model, p.Model)
			assert.Equal(t, c.bf16, p.BF16Native, "bf16")
			assert.Equal(t, c.int8, p.Int8Native, "int8")
			assert.Equal(t, c.amx, p.AMX, "amx")
			assert.Equal(t, c.actBits, p.Int8ActivationBits, "int8 activation bits")
			assert.Equal(t, c.flags, p.Flags)
		})
	}
}

// TestHostCPUReadsProcCPUInfo: HostCPU is ParseCPUInfo of this machine's
// /proc/cpuinfo.
func TestHostCPUReadsProcCPUInfo(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	require.NoError(t, err)
	assert.Equal(t, torch.ParseCPUInfo(string(b)), torch.HostCPU())
}

// TestCheckPrecision: emulated bf16 is refused, or warned about with force;
// native bf16 is warned about only where it measured slower than fp32.
func TestCheckPrecision(t *testing.T) {
	zen3, zen4 := torch.ParseCPUInfo(zen3CPUInfo), torch.ParseCPUInfo(zen4CPUInfo)
	cuda := gotch.Device{Name: "cuda", Value: 0}
	for _, c := range []struct {
		name    string
		dt      gotch.DType
		dev     gotch.Device
		cpu     torch.CPUPrecision
		force   bool
		refused bool
		warned  bool
	}{
		{"bf16 emulated", gotch.BFloat16, gotch.CPU, zen3, false, true, false},
		{"bf16 emulated, forced", gotch.BFloat16, gotch.CPU, zen3, true, false, true},
		{"bf16 native", gotch.BFloat16, gotch.CPU, zen4, false, false, false},
		{"fp32 on zen3", gotch.Float, gotch.CPU, zen3, false, false, false},
		{"bf16 on CUDA", gotch.BFloat16, cuda, zen3, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := torch.CheckPrecision(c.dt, c.dev, c.cpu, func() torch.Rates { return torch.Rates{} }, c.force)
			if c.refused {
				require.ErrorIs(t, err, torch.ErrEmulatedBF16)
				assert.ErrorContains(t, err, "AMD EPYC 7B13")
				assert.ErrorContains(t, err, "about 50x slower")
				assert.ErrorContains(t, err, "--force")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.warned, w != "", "warning %q", w)
			if c.warned {
				assert.Contains(t, w, "about 50x slower")
			}
		})
	}
}

// TestCheckPrecisionMeasured: native bf16 is warned about, with both rates
// and auto's choice, where it measured under 1.5x fp32's rate (where auto
// would not pick it), and the rates are asked for only for bf16 on the CPU.
func TestCheckPrecisionMeasured(t *testing.T) {
	zen4 := torch.ParseCPUInfo(zen4CPUInfo)
	asked := 0
	rates := func(r torch.Rates) func() torch.Rates {
		return func() torch.Rates { asked++; return r }
	}
	w, err := torch.CheckPrecision(gotch.BFloat16, gotch.CPU, zen4, rates(torch.Rates{FP32: 156, BF16: 75}), false)
	require.NoError(t, err)
	assert.Equal(t, "warning: bf16 gains little or nothing over fp32 on this CPU: one linear at 75 against 156 GFLOP/s (AMD EPYC 9B14, flags: avx2 avx512f avx512_vnni avx512_bf16); dtype auto picks fp32 to answer", w)
	w, err = torch.CheckPrecision(gotch.BFloat16, gotch.CPU, zen4, rates(torch.Rates{FP32: 100, BF16: 140}), false)
	require.NoError(t, err)
	assert.Contains(t, w, "one linear at 140 against 100 GFLOP/s", "1.4x: auto would not pick it")
	for _, r := range []torch.Rates{{FP32: 100, BF16: 150}, {FP32: 100, BF16: 240}, {}} {
		w, err = torch.CheckPrecision(gotch.BFloat16, gotch.CPU, zen4, rates(r), false)
		require.NoError(t, err)
		assert.Empty(t, w, "%+v", r)
	}
	assert.Equal(t, 5, asked)
	w, err = torch.CheckPrecision(gotch.Float, gotch.CPU, zen4, rates(torch.Rates{FP32: 156, BF16: 75}), false)
	require.NoError(t, err)
	assert.Empty(t, w)
	_, err = torch.CheckPrecision(gotch.BFloat16, gotch.Device{Name: "cuda", Value: 0}, zen4, rates(torch.Rates{FP32: 156, BF16: 75}), false)
	require.NoError(t, err)
	assert.Equal(t, 5, asked, "fp32, or bf16 on CUDA: no probe")
}

// TestAutoDTypeOnTheCPU: auto's choice from the flags and the measured
// rates (GFLOP/s of one linear): a lower precision where the flags allow it
// and it runs at 1.5x fp32's rate or more, the fastest of them to answer;
// with nothing measured, the flags alone.
func TestAutoDTypeOnTheCPU(t *testing.T) {
	int8Here := gotch.Int8
	if torch.Int8Available() != nil { // Debian's LibTorch 1.13: no fbgemm
		int8Here = gotch.Float
	}
	noAMX := "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx2 avx512f avx_vnni avx512_bf16 avx512_vnni\n"
	for _, c := range []struct {
		name          string
		cpuinfo       string
		rates         torch.Rates
		train, answer gotch.DType
	}{
		{"zen3, not measured", zen3CPUInfo, torch.Rates{}, gotch.Float, gotch.Float},
		{"zen3: no bf16, 7-bit int8, whatever the rates", zen3CPUInfo, torch.Rates{FP32: 100, BF16: 500, Int8: 500}, gotch.Float, gotch.Float},
		{"zen4, not measured: bf16", zen4CPUInfo, torch.Rates{}, gotch.BFloat16, gotch.BFloat16},
		{"zen4, bf16 2.4x", zen4CPUInfo, torch.Rates{FP32: 100, BF16: 240, Int8: 180}, gotch.BFloat16, gotch.BFloat16},
		{"no AMX: bf16 0.6x, int8 2x", noAMX, torch.Rates{FP32: 100, BF16: 60, Int8: 200}, gotch.Float, int8Here},
		{"no AMX: a near tie stays fp32", noAMX, torch.Rates{FP32: 100, BF16: 110, Int8: 115}, gotch.Float, gotch.Float},
		{"bf16 at 1.2x: not enough", noAMX, torch.Rates{FP32: 100, BF16: 120}, gotch.Float, gotch.Float},
		{"bf16 at exactly 1.5x", noAMX, torch.Rates{FP32: 100, BF16: 150}, gotch.BFloat16, gotch.BFloat16},
		{"AMX: bf16 faster than int8", sprCPUInfo, torch.Rates{FP32: 100, BF16: 560, Int8: 300}, gotch.BFloat16, gotch.BFloat16},
		{"int8 faster than bf16", sprCPUInfo, torch.Rates{FP32: 100, BF16: 200, Int8: 300}, gotch.BFloat16, int8Here},
	} {
		t.Run(c.name, func(t *testing.T) {
			cpu := torch.ParseCPUInfo(c.cpuinfo)
			assert.Equal(t, c.train, torch.AutoDType(gotch.CPU, cpu, c.rates), "to train")
			want := c.answer
			if want == gotch.Float && c.rates.Measured() && cpu.BF16Native && c.rates.BF16 >= 1.5*c.rates.FP32 {
				want = gotch.BFloat16 // int8 unavailable here, bf16 next
			}
			assert.Equal(t, want, torch.AutoInferenceDType(gotch.CPU, cpu, c.rates), "to answer")
		})
	}
	dt, err := torch.ParseDType("auto", gotch.CPU)
	require.NoError(t, err)
	assert.Equal(t, torch.AutoDType(gotch.CPU, torch.HostCPU(), torch.HostRates()), dt)
}

// TestProbeRates: this host's rates are measured for fp32 always, for bf16
// exactly where it is native and linears pack, for int8 exactly where its
// activations get 8 bits and int8 runs; the probe leaves no tensor behind;
// for a CUDA device nothing is measured.
func TestProbeRates(t *testing.T) {
	cpu := torch.HostCPU()
	live := torch.LiveTensors()
	r := torch.ProbeRates(cpu)
	assert.Equal(t, live, torch.LiveTensors(), "the probe frees its tensors")
	t.Logf("%s, %d threads: fp32 %.0f, bf16 %.0f, int8 %.0f GFLOP/s", cpu.Model, torch.Threads(), r.FP32, r.BF16, r.Int8)
	assert.True(t, r.Measured())
	assert.Greater(t, r.FP32, 1.0, "one 384x768x768 linear runs at more than 1 GFLOP/s")
	assert.Equal(t, cpu.BF16Native && torch.PackedLinearAvailable() == nil, r.BF16 > 0, "bf16 measured")
	assert.Equal(t, cpu.Int8ActivationBits == 8 && torch.Int8Available() == nil, r.Int8 > 0, "int8 measured")
	assert.True(t, torch.Rates{FP32: r.FP32}.Measured())
	assert.False(t, torch.Rates{}.Measured())
	assert.Equal(t, torch.HostRates(), torch.HostRatesFor(gotch.CPU))
	assert.False(t, torch.HostRatesFor(gotch.Device{Name: "cuda", Value: 0}).Measured(), "CUDA: the CPU's rates are not weighed")
}
