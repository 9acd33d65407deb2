package torch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
)

// CUDAAvailable reports whether LibTorch sees a usable CUDA device.
func CUDAAvailable() bool { return CUDABuild() && lib.AtcCudaIsAvailable() }

// CUDADeviceCount is the number of CUDA devices LibTorch sees (0 on a CPU build).
func CUDADeviceCount() int {
	if !CUDABuild() {
		return 0
	}
	return int(lib.AtcCudaDeviceCount())
}

// ParseDevice turns auto|cpu|cuda|cuda:N into a device. "auto" picks CUDA when it
// is available. Asking for CUDA where there is none is an error that says why.
func ParseDevice(s string) (gotch.Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "" || s == "auto":
		if CUDAAvailable() {
			return gotch.CudaBuilder(0), nil
		}
		return gotch.CPU, nil
	case s == "cpu":
		return gotch.CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if s != "cuda" {
			n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
			if err != nil || n < 0 {
				return gotch.CPU, fmt.Errorf("device %q: want cuda:N with N a device index", s)
			}
			idx = n
		}
		if !CUDABuild() {
			return gotch.CPU, fmt.Errorf("device %q: this loraqa was built against a CPU-only LibTorch %s; rebuild with a CUDA LibTorch (LIBTORCH_FLAVOUR=cuda make build, or LIBTORCH=/path/to/cuda/libtorch make build)", s, LibTorchVersion())
		}
		n := CUDADeviceCount()
		if n == 0 || !lib.AtcCudaIsAvailable() {
			return gotch.CPU, fmt.Errorf("device %q: LibTorch has CUDA but sees no GPU (check the driver, nvidia-smi, and CUDA_VISIBLE_DEVICES)", s)
		}
		if idx >= n {
			return gotch.CPU, fmt.Errorf("device %q: only %d CUDA device(s) visible", s, n)
		}
		return gotch.CudaBuilder(uint(idx)), nil
	}
	return gotch.CPU, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}

// DeviceName is the canonical name of a device: cpu or cuda:N.
func DeviceName(d gotch.Device) string {
	if d.IsCuda() {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return "cpu"
}

// ParseDType turns the dtype of the frozen base (fp32, bf16, fp16, int8, or
// auto: AutoDType on this machine, measured) into a gotch dtype for dev. fp16 (trained
// with dynamic loss scaling) is refused on the CPU, where LibTorch has few
// fast half kernels; bf16 is the CPU's half precision (fast on CPUs with
// avx512_bf16 or AMX; CheckPrecision says where it is emulated). int8
// (gotch.Int8) is for inference on the CPU: the base's linears dynamically
// quantized (QLinear), everything else float32; see CheckDType.
func ParseDType(s string, dev gotch.Device) (gotch.DType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return AutoDType(dev, HostCPU(), HostRatesFor(dev)), nil
	case "", "fp32", "float32":
		return gotch.Float, nil
	case "bf16", "bfloat16":
		return gotch.BFloat16, nil
	case "fp16", "float16", "half":
		if !dev.IsCuda() {
			return gotch.Float, fmt.Errorf("dtype %q needs a CUDA device; on the CPU use bf16", s)
		}
		return gotch.Half, nil
	case "int8", "qint8":
		return CheckDType(gotch.Int8, dev)
	}
	return gotch.Float, fmt.Errorf("dtype %q: want fp32, bf16, fp16, int8 or auto", s)
}

// DTypeName is the config name of a base dtype: fp32, bf16, fp16 or int8.
func DTypeName(d gotch.DType) string {
	switch d {
	case gotch.BFloat16:
		return "bf16"
	case gotch.Half:
		return "fp16"
	case gotch.Int8:
		return "int8"
	}
	return "fp32"
}

// DeviceOrAuto is d, or for the zero Device the one "auto" picks: CUDA when
// it is available, else the CPU.
func DeviceOrAuto(d gotch.Device) gotch.Device {
	if d == (gotch.Device{}) {
		d, _ = ParseDevice("auto") // "auto" never fails
	}
	return d
}

// CheckDType checks a base dtype for dev: the zero DType means fp32; fp32
// and bf16 run anywhere, fp16 on CUDA only (as ParseDType says), int8 on the
// CPU only and where LibTorch has the fbgemm engine (Int8Available), for
// inference (training refuses it).
func CheckDType(dt gotch.DType, dev gotch.Device) (gotch.DType, error) {
	switch dt {
	case 0, gotch.Float:
		return gotch.Float, nil
	case gotch.BFloat16:
		return dt, nil
	case gotch.Half:
		if !dev.IsCuda() {
			return gotch.Float, fmt.Errorf("dtype fp16 needs a CUDA device; on the CPU use bf16")
		}
		return dt, nil
	case gotch.Int8:
		if dev.IsCuda() {
			return gotch.Float, fmt.Errorf("dtype int8 runs on the CPU only (LibTorch's fbgemm int8 kernels); on %s use bf16 or fp16", DeviceName(dev))
		}
		if err := Int8Available(); err != nil {
			return gotch.Float, fmt.Errorf("dtype int8: %w", err)
		}
		return dt, nil
	}
	return gotch.Float, fmt.Errorf("dtype %v: the base runs in fp32, bf16, fp16 or int8", dt)
}
