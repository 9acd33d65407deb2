package torch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"
)

// CUDAReport is what doctor proves about CUDA rather than assumes: whether
// libtorch_cuda is mapped into this process, what the driver and the runtime
// say, each device, and a matmul on each compared with the CPU. Its fields
// exist on every build; without a GPU, Available is false and Reason says why.
type CUDAReport struct {
	Available        bool         `json:"available"`        // LibTorch can run on a CUDA device here
	Reason           string       `json:"reason,omitempty"` // why not, when not
	Verified         bool         `json:"verified"`         // available, and every device's matmul matched the CPU
	LibTorchCUDA     bool         `json:"libtorch_cuda_loaded"`
	LibTorchCUDAPath string       `json:"libtorch_cuda_path"`
	RuntimeVersion   string       `json:"runtime_version"` // libcudart's, "" when none is loaded
	Driver           DriverProbe  `json:"driver"`
	LibTorchDevices  int          `json:"libtorch_devices"` // the devices LibTorch sees
	Devices          []DeviceInfo `json:"devices"`
	MatmulSize       int          `json:"matmul_size"`
	MatmulTolerance  float64      `json:"matmul_tolerance"`
}

// DriverProbe is what the NVIDIA driver (libcuda.so.1) reports.
type DriverProbe struct {
	Loaded  bool         `json:"loaded"`          // libcuda.so.1 could be loaded
	Version string       `json:"version"`         // the CUDA version the driver supports, as "12.4"
	Error   string       `json:"error,omitempty"` // why the driver gave no devices
	Devices []DeviceInfo `json:"-"`
}

// DeviceInfo is one CUDA device and the check of its arithmetic.
type DeviceInfo struct {
	Index             int           `json:"index"`
	Name              string        `json:"name"`
	ComputeCapability string        `json:"compute_capability"` // "9.0"
	TotalMemory       uint64        `json:"total_memory_bytes"`
	Error             string        `json:"error,omitempty"`
	Matmul            *MatmulResult `json:"matmul"`
}

// MatmulResult compares one matmul on a device with the same matmul on the
// reference (the CPU).
type MatmulResult struct {
	Device     string  `json:"device"`
	Reference  string  `json:"reference"`
	MaxAbsDiff float64 `json:"max_abs_diff"`
	Tolerance  float64 `json:"tolerance"`
	Pass       bool    `json:"pass"`
	Error      string  `json:"error,omitempty"` // the LibTorch failure, when the matmul did not run
}

// MatmulCheckSize and MatmulCheckTolerance are the matmul doctor runs: n×n
// float32 matrices of values in [-1, 1]. An fp32 GEMM differs from the CPU's
// by about 1e-6 here and a TF32 one by a few 1e-3; wrong results differ by O(1).
const (
	MatmulCheckSize      = 128
	MatmulCheckTolerance = 1e-2
)

// CheckCUDA probes CUDA and, on each device LibTorch sees, runs a matmul and
// compares it with the CPU's.
func CheckCUDA() CUDAReport {
	r := CUDAReport{
		RuntimeVersion:  CUDARuntimeVersion(),
		Driver:          ProbeDriver(),
		MatmulSize:      MatmulCheckSize,
		MatmulTolerance: MatmulCheckTolerance,
	}
	r.LibTorchCUDAPath = mappedLibrary("libtorch_cuda.so")
	r.LibTorchCUDA = r.LibTorchCUDAPath != ""
	r.Devices = append([]DeviceInfo{}, r.Driver.Devices...)
	if r.LibTorchCUDA {
		r.LibTorchDevices = CUDADeviceCount()
		r.Available = CUDAAvailable() && r.LibTorchDevices > 0
	}
	r.Verified = r.Available
	for i := range r.Devices {
		d := &r.Devices[i]
		if !r.Available || i >= r.LibTorchDevices {
			r.Verified = false
			continue
		}
		m := MatmulCheck(gotch.CudaBuilder(uint(i)), gotch.CPU, MatmulCheckSize, MatmulCheckTolerance)
		d.Matmul = &m
		r.Verified = r.Verified && m.Pass
	}
	if r.Available && len(r.Devices) == 0 {
		r.Verified = false // LibTorch sees devices the driver did not list
	}
	r.Reason = cudaReason(r, CUDABuild())
	return r
}

// cudaReason says in one sentence why CUDA cannot be used ("" when it can):
// it starts with "no GPU" when no device is there to use.
func cudaReason(r CUDAReport, cudaBuild bool) string {
	driver := "no NVIDIA driver is loaded"
	if r.Driver.Error != "" {
		driver = r.Driver.Error
	}
	switch {
	case r.Available:
		if !r.Verified {
			return "a CUDA device failed the matmul check against the CPU (see devices)"
		}
		return ""
	case !r.LibTorchCUDA:
		flavour := "the cpu flavour of LibTorch (libtorch_cuda is not loaded)"
		if cudaBuild {
			flavour = "a CUDA LibTorch, yet libtorch_cuda is not loaded (was it linked with --as-needed?)"
		}
		if len(r.Driver.Devices) == 0 {
			return fmt.Sprintf("no GPU: this loraqa links %s, and %s", flavour, driver)
		}
		return fmt.Sprintf("the driver sees %d GPU(s), but this loraqa links %s: rebuild with LIBTORCH_FLAVOUR=cuda", len(r.Driver.Devices), flavour)
	case !r.Driver.Loaded || r.Driver.Error != "" || len(r.Driver.Devices) == 0:
		if r.Driver.Loaded && r.Driver.Error == "" {
			driver = "the driver lists no device (check CUDA_VISIBLE_DEVICES)"
		}
		return fmt.Sprintf("no GPU: libtorch_cuda is loaded, but %s", driver)
	}
	return fmt.Sprintf("the driver (CUDA %s) sees %d GPU(s), but LibTorch (CUDA runtime %s) reports none usable: is the driver older than the runtime?", r.Driver.Version, len(r.Driver.Devices), r.RuntimeVersion)
}

// MatmulCheck multiplies two fixed n×n float32 matrices on dev and on ref
// and compares the products: the largest absolute difference, and whether it
// is within tol. A LibTorch failure on either side fails the check with its
// message. Every tensor it makes is freed.
func MatmulCheck(dev, ref gotch.Device, n int, tol float64) MatmulResult {
	res := MatmulResult{Device: DeviceName(dev), Reference: DeviceName(ref), Tolerance: tol, MaxAbsDiff: math.NaN()}
	a, b := checkMatrix(n, 1), checkMatrix(n, 2)
	var got, want []float32
	err := Guard(func() {
		NoGrad(func() {
			got = matmulOn(dev, a, b, n)
			want = matmulOn(ref, a, b, n)
		})
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.MaxAbsDiff = maxAbsDiff(got, want)
	res.Pass = res.MaxAbsDiff <= tol // false for NaN
	return res
}

// MarshalJSON writes a NaN difference (the matmul did not run) as null.
func (m MatmulResult) MarshalJSON() ([]byte, error) {
	type plain MatmulResult
	var diff *float64
	if !math.IsNaN(m.MaxAbsDiff) && !math.IsInf(m.MaxAbsDiff, 0) {
		diff = &m.MaxAbsDiff
	}
	return json.Marshal(struct {
		plain
		MaxAbsDiff *float64 `json:"max_abs_diff"`
	}{plain(m), diff})
}

// matmulOn computes a·b on dev and returns it on the host.
func matmulOn(dev gotch.Device, a, b []float32, n int) []float32 {
	shape := []int64{int64(n), int64(n)}
	ta, err := FromFloat32(a, shape, gotch.Float, dev)
	if err != nil {
		panic(err)
	}
	defer ta.MustDrop()
	tb, err := FromFloat32(b, shape, gotch.Float, dev)
	if err != nil {
		panic(err)
	}
	defer tb.MustDrop()
	c := ta.MustMatmul(tb, false)
	defer c.MustDrop()
	return ToFloat32(c)
}

// checkMatrix is a fixed n×n matrix of values in [-1, 1] (no generator involved).
func checkMatrix(n, seed int) []float32 {
	v := make([]float32, n*n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i*(2*seed+1)) + float64(seed)))
	}
	return v
}

// maxAbsDiff is the largest |a[i]-b[i]|; NaN when a value is NaN or the
// lengths differ.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.NaN()
		}
		m = math.Max(m, d)
	}
	return m
}

// mappedLibrary is the path of the first library mapped into this process
// whose file name starts with prefix ("" when none is): /proc/self/maps
// tells what the dynamic loader really loaded.
func mappedLibrary(prefix string) string {
	for _, p := range mappedFiles() {
		if strings.HasPrefix(filepath.Base(p), prefix) {
			return p
		}
	}
	return ""
}

// mappedFiles are the paths of the files mapped into this process, in the
// order of /proc/self/maps (with repeats); none where it cannot be read.
func mappedFiles() []string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 6 {
			out = append(out, fields[len(fields)-1])
		}
	}
	return out
}
