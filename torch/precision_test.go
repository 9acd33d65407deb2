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
			w, err := torch.CheckPrecision(c.dt, c.dev, c.cpu, c.force)
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

func TestAutoDTypeOnTheCPU(t *testing.T) {
	assert.Equal(t, gotch.Float, torch.AutoDType(gotch.CPU, torch.ParseCPUInfo(zen3CPUInfo)), "emulated bf16: fp32")
	assert.Equal(t, gotch.BFloat16, torch.AutoDType(gotch.CPU, torch.ParseCPUInfo(zen4CPUInfo)), "native bf16")
	dt, err := torch.ParseDType("auto", gotch.CPU)
	require.NoError(t, err)
	assert.Equal(t, torch.AutoDType(gotch.CPU, torch.HostCPU()), dt)
}
