package torch

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/sugarme/gotch"
)

// CPUPrecision is what the host CPU runs natively, from its /proc/cpuinfo
// flags: bf16 needs avx512_bf16 or AMX (amx_bf16), or LibTorch emulates it
// with fp32 instructions; int8 GEMMs are fast with VNNI (avx512_vnni,
// avx_vnni) or AMX (amx_int8).
type CPUPrecision struct {
	Model      string `json:"model"`
	BF16Native bool   `json:"bf16_native"`
	Int8Native bool   `json:"int8_native"`
	// Int8ActivationBits is how many bits --dtype int8 gives the activations
	// (Int8ActivationBits).
	Int8ActivationBits int      `json:"int8_activation_bits"`
	AMX                bool     `json:"amx"`
	Flags              []string `json:"flags"` // the flags above that the CPU has, and avx2/avx512f
}

// precisionFlags are the cpuinfo flags CPUPrecision reads and reports.
var precisionFlags = []string{"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}

// ParseCPUInfo reads a /proc/cpuinfo text (its first processor's model name
// and flags).
func ParseCPUInfo(text string) CPUPrecision {
	var p CPUPrecision
	have := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name":
			if p.Model == "" {
				p.Model = strings.TrimSpace(val)
			}
		case "flags":
			if len(have) == 0 {
				for _, f := range strings.Fields(val) {
					have[f] = true
				}
			}
		}
	}
	for _, f := range precisionFlags {
		if have[f] {
			p.Flags = append(p.Flags, f)
		}
	}
	p.AMX = have["amx_tile"]
	p.BF16Native = have["avx512_bf16"] || have["amx_bf16"]
	p.Int8Native = have["avx512_vnni"] || have["avx_vnni"] || have["amx_int8"]
	p.Int8ActivationBits = Int8ActivationBits(have["avx512_vnni"])
	return p
}

// Int8ActivationBits is how many bits an int8 linear (QLinear) gives its
// activations on a CPU with or without avx512_vnni. fbgemm's AVX2 and
// AVX-512 kernels sum pairs of uint8·int8 products in int16, which 8-bit
// activations could saturate, so elsewhere they get 7 bits, as torch.ao
// (reduce_range) gives them; with avx512_vnni fbgemm sums in int32 and 8
// bits halve the rounding error, which keeps exact match near fp32's
// (docs/benchmarks.md).
func Int8ActivationBits(avx512VNNI bool) int {
	if avx512VNNI {
		return 8
	}
	return 7
}

var hostCPU = sync.OnceValue(func() CPUPrecision {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return CPUPrecision{Model: "unknown (" + err.Error() + ")"}
	}
	return ParseCPUInfo(string(b))
})

// HostCPU is CPUPrecision of the machine this process runs on (read once).
func HostCPU() CPUPrecision { return hostCPU() }

// ErrEmulatedBF16 is the refusal of bf16 on a CPU that would emulate it.
var ErrEmulatedBF16 = errors.New("bf16 is emulated on this CPU")

// EmulatedSlowdown is what an emulated bf16 forward costs against fp32:
// about 50x, measured on a 2-core AMD Zen 3 (docs/benchmarks.md).
const EmulatedSlowdown = "about 50x slower than fp32"

// CheckPrecision tells whether dt runs natively on dev. bf16 on a CPU
// without avx512_bf16 or AMX is emulated: without force it is refused
// (ErrEmulatedBF16, saying why and what to use instead); with force it is
// allowed with a warning, which the caller shows. bf16 on a CPU that has the
// instructions but whose rates (called only then) measured it at less than
// fasterBy times fp32's rate, where auto would not pick it, is allowed with
// a warning that gives both rates. Everything else
// returns "" and nil.
func CheckPrecision(dt gotch.DType, dev gotch.Device, cpu CPUPrecision, rates func() Rates, force bool) (warning string, err error) {
	if dt != gotch.BFloat16 || dev.IsCuda() {
		return "", nil
	}
	if cpu.BF16Native {
		if r := rates(); r.BF16 > 0 && r.BF16 < fasterBy*r.FP32 {
			return fmt.Sprintf("warning: bf16 gains little or nothing over fp32 on this CPU: one linear at %.0f against %.0f GFLOP/s (%s, flags: %s); dtype auto picks %s to answer",
				r.BF16, r.FP32, cpu.Model, strings.Join(cpu.Flags, " "), DTypeName(AutoInferenceDType(dev, cpu, r))), nil
		}
		return "", nil
	}
	why := fmt.Sprintf("%s (flags: %s) has neither avx512_bf16 nor amx_bf16, so LibTorch emulates bf16 and runs %s", cpu.Model, strings.Join(cpu.Flags, " "), EmulatedSlowdown)
	if !force {
		return "", fmt.Errorf("%w: %s; use fp32 (or --force to run bf16 anyway)", ErrEmulatedBF16, why)
	}
	return fmt.Sprintf("warning: %s: %s (--force)", ErrEmulatedBF16, why), nil
}

// fasterBy is how much faster than fp32 (in Rates) a lower precision must
// run its GEMMs for auto to pick it: its logits move, so a near tie stays
// fp32, and the rest of a forward gains less than its GEMMs (a Xeon without
// AMX ran one bf16 linear at 0.5-1.2x fp32's rate, whole forwards at 0.6-0.7x
// fp32's speed).
const fasterBy = 1.5

// AutoDType is the precision "auto" picks to train on dev: on CUDA bf16
// where the device has it (compute capability 8.0 and up) and fp16 below;
// on the CPU bf16 where it runs natively and, when r is measured, at least
// fasterBy times fp32's rate, else fp32. Flags alone do not decide it: a
// Zen 4 with avx512_bf16 trained at 2.3-2.5x fp32's throughput in bf16, a
// virtualised Xeon with avx512_bf16 but no AMX ran bf16 forwards at 0.6-0.7x
// fp32's speed (docs/benchmarks.md).
func AutoDType(dev gotch.Device, cpu CPUPrecision, r Rates) gotch.DType {
	if dev.IsCuda() {
		for _, d := range ProbeDriver().Devices {
			var major int
			if d.Index == dev.Value && d.ComputeCapability != "" {
				if _, err := fmt.Sscanf(d.ComputeCapability, "%d", &major); err == nil && major < 8 {
					return gotch.Half
				}
			}
		}
		return gotch.BFloat16
	}
	if cpu.BF16Native && (!r.Measured() || r.BF16 >= fasterBy*r.FP32) {
		return gotch.BFloat16
	}
	return gotch.Float
}

// AutoInferenceDType is the precision "auto" picks for inference (predict,
// eval, serve): on CUDA AutoDType's; on the CPU the fastest in r of fp32,
// bf16 where it runs natively, and int8 where its activations get 8 bits
// (avx512_vnni, Int8ActivationBits) and this LibTorch has int8
// (Int8Available), a lower precision only at fasterBy times fp32's rate.
// With 8-bit activations int8 held exact match and F1 within 0.3 points of
// fp32; with 7 bits it lost 3 points of exact match, so there it is not a
// candidate (docs/benchmarks.md). With r not measured the flags decide: bf16
// where native, else int8 where it can run, else fp32.
func AutoInferenceDType(dev gotch.Device, cpu CPUPrecision, r Rates) gotch.DType {
	if dev.IsCuda() {
		return AutoDType(dev, cpu, r)
	}
	int8OK := cpu.Int8ActivationBits == 8 && Int8Available() == nil
	if !r.Measured() {
		if cpu.BF16Native {
			return gotch.BFloat16
		}
		if int8OK {
			return gotch.Int8
		}
		return gotch.Float
	}
	best, rate := gotch.Float, fasterBy*r.FP32
	if cpu.BF16Native && r.BF16 >= rate {
		best, rate = gotch.BFloat16, r.BF16
	}
	if int8OK && r.Int8 >= rate {
		best = gotch.Int8
	}
	return best
}
