package torch

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
)

// doctor --json's cuda object has every field on every build; without a
// device it says so plainly.
func TestCUDAReportFieldsExist(t *testing.T) {
	b, err := json.Marshal(Info())
	require.NoError(t, err)
	var got struct {
		CUDA map[string]json.RawMessage `json:"cuda"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	for _, k := range []string{"available", "verified", "libtorch_cuda_loaded", "libtorch_cuda_path", "runtime_version", "driver", "libtorch_devices", "devices", "matmul_size", "matmul_tolerance"} {
		assert.Contains(t, got.CUDA, k)
	}
	var driver map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got.CUDA["driver"], &driver))
	assert.Contains(t, driver, "loaded")
	assert.Contains(t, driver, "version")
	r := CheckCUDA()
	if len(r.Driver.Devices) == 0 {
		assert.False(t, r.Available)
		assert.False(t, r.Verified)
		assert.True(t, strings.HasPrefix(r.Reason, "no GPU: "), "reason %q", r.Reason)
		assert.Contains(t, string(got.CUDA["reason"]), "no GPU")
		assert.Equal(t, "[]", string(got.CUDA["devices"]), "an empty list, not null")
	}
	if r.Available {
		assert.Empty(t, r.Reason)
		for _, d := range r.Devices[:min(r.LibTorchDevices, len(r.Devices))] {
			require.NotNil(t, d.Matmul, "device %d", d.Index)
			assert.True(t, d.Matmul.Pass, "device %d: %+v", d.Index, d.Matmul)
		}
	}
}

// /proc/self/maps tells whether libtorch_cuda is really loaded: it is in the
// cuda flavour (linked --no-as-needed), never in the cpu one.
func TestLibTorchCUDALoadedMatchesFlavour(t *testing.T) {
	r := CheckCUDA()
	assert.Equal(t, Info().Flavour == "cuda", r.LibTorchCUDA)
	assert.Equal(t, r.LibTorchCUDA, r.LibTorchCUDAPath != "")
	assert.NotEmpty(t, mappedLibrary("libc10"), "libc10 is mapped in every build")
	assert.Empty(t, mappedLibrary("libnot-a-library"))
	if !r.LibTorchCUDA {
		assert.False(t, r.Available)
	}
}

func TestCUDAReason(t *testing.T) {
	noLib := DriverProbe{Error: "no NVIDIA driver: libcuda.so.1: cannot open shared object file"}
	noDevice := DriverProbe{Loaded: true, Version: "12.4", Error: "cuInit: CUDA_ERROR_NO_DEVICE (100)"}
	emptyList := DriverProbe{Loaded: true, Version: "12.4"}
	twoGPUs := DriverProbe{Loaded: true, Version: "12.4", Devices: []DeviceInfo{{Index: 0}, {Index: 1}}}
	cases := map[string]struct {
		r         CUDAReport
		cudaBuild bool
		want      string
	}{
		"cpu flavour, no driver (this machine)": {CUDAReport{Driver: noLib}, false, "no GPU: this loraqa links the cpu flavour of LibTorch (libtorch_cuda is not loaded), and no NVIDIA driver: libcuda.so.1"},
		"cuda flavour on a CPU machine (CI)":    {CUDAReport{LibTorchCUDA: true, Driver: noLib}, true, "no GPU: libtorch_cuda is loaded, but no NVIDIA driver: libcuda.so.1"},
		"cuda flavour, driver without devices":  {CUDAReport{LibTorchCUDA: true, Driver: noDevice}, true, "no GPU: libtorch_cuda is loaded, but cuInit: CUDA_ERROR_NO_DEVICE (100)"},
		"cuda flavour, devices hidden":          {CUDAReport{LibTorchCUDA: true, Driver: emptyList}, true, "no GPU: libtorch_cuda is loaded, but the driver lists no device (check CUDA_VISIBLE_DEVICES)"},
		"cpu flavour on a GPU machine":          {CUDAReport{Driver: twoGPUs}, false, "the driver sees 2 GPU(s), but this loraqa links the cpu flavour of LibTorch (libtorch_cuda is not loaded): rebuild with LIBTORCH_FLAVOUR=cuda"},
		"cuda build without libtorch_cuda":      {CUDAReport{Driver: twoGPUs}, true, "yet libtorch_cuda is not loaded"},
		"driver older than the runtime":         {CUDAReport{LibTorchCUDA: true, Driver: twoGPUs, RuntimeVersion: "12.8"}, true, "the driver (CUDA 12.4) sees 2 GPU(s), but LibTorch (CUDA runtime 12.8) reports none usable"},
		"available and verified":                {CUDAReport{Available: true, Verified: true, LibTorchCUDA: true, Driver: twoGPUs}, true, ""},
		"available, matmul failed":              {CUDAReport{Available: true, LibTorchCUDA: true, Driver: twoGPUs}, true, "failed the matmul check"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := cudaReason(c.r, c.cudaBuild)
			if c.want == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, c.want)
		})
	}
}

// The matmul check, with the CPU on both sides: the same code path doctor
// runs on a GPU against the CPU.
func TestMatmulCheckCPUAgainstCPU(t *testing.T) {
	noGC(t)
	before := LiveTensors()
	m := MatmulCheck(gotch.CPU, gotch.CPU, 64, MatmulCheckTolerance)
	assert.Equal(t, MatmulResult{Device: "cpu", Reference: "cpu", MaxAbsDiff: 0, Tolerance: MatmulCheckTolerance, Pass: true}, m)
	assert.Equal(t, before, LiveTensors(), "the check frees its tensors")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	assert.JSONEq(t, `{"device":"cpu","reference":"cpu","max_abs_diff":0,"tolerance":0.01,"pass":true}`, string(b))
}

// A device LibTorch cannot use fails the check with LibTorch's message, and
// leaves no tensor behind.
func TestMatmulCheckFailsOnAMissingDevice(t *testing.T) {
	if CUDAAvailable() {
		t.Skip("a CUDA device is there")
	}
	noGC(t)
	before := LiveTensors()
	m := MatmulCheck(gotch.CudaBuilder(0), gotch.CPU, 8, MatmulCheckTolerance)
	assert.False(t, m.Pass)
	assert.NotEmpty(t, m.Error)
	assert.True(t, math.IsNaN(m.MaxAbsDiff))
	assert.Equal(t, before, LiveTensors(), "the tensors made before the failure are freed")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"max_abs_diff":null`)
}

func TestMaxAbsDiff(t *testing.T) {
	nan := float32(math.NaN())
	cases := map[string]struct {
		a, b []float32
		want float64 // NaN: no comparison
	}{
		"equal":      {[]float32{1, 2}, []float32{1, 2}, 0},
		"largest":    {[]float32{1, 2, 3}, []float32{1.5, 2, 0}, 3},
		"nan":        {[]float32{1, nan}, []float32{1, 2}, math.NaN()},
		"lengths":    {[]float32{1}, []float32{1, 2}, math.NaN()},
		"both empty": {nil, nil, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := maxAbsDiff(c.a, c.b)
			if math.IsNaN(c.want) {
				assert.True(t, math.IsNaN(got))
				return
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestCUDAVersion(t *testing.T) {
	for v, want := range map[int]string{12010: "12.1", 12040: "12.4", 13000: "13.0", 11080: "11.8", 0: "", -1: ""} {
		assert.Equal(t, want, cudaVersion(v), "%d", v)
	}
}
