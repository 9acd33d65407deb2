package torch

import (
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	lib "github.com/sugarme/gotch/libtch"
)

// LibTorchVersion is the version of the LibTorch this binary was built against.
func LibTorchVersion() string { return lib.LoraqaLibtorchVersion }

// LibTorchAtLeast reports whether the build's LibTorch is major.minor or newer.
func LibTorchAtLeast(major, minor int) bool {
	var ma, mi int
	fmt.Sscanf(LibTorchVersion(), "%d.%d", &ma, &mi)
	return ma > major || (ma == major && mi >= minor)
}

// Source is where the build's LibTorch came from: pypi, debian, LIBTORCH or flag.
func Source() string { return lib.LoraqaSource }

// CUDABuild reports whether the binary links a CUDA LibTorch.
func CUDABuild() bool { return lib.LoraqaCUDABuild }

// BuildInfo is what doctor and bench report about the tensor backend.
type BuildInfo struct {
	GoVersion     string   `json:"go"`
	LibTorch      string   `json:"libtorch"`
	LibTorchLib   string   `json:"libtorch_lib"`
	Source        string   `json:"libtorch_source"` // pypi, debian, LIBTORCH or flag (tools/setup)
	Flavour       string   `json:"flavour"`         // cpu or cuda: the LibTorch libraries linked
	CXX11ABI      bool     `json:"cxx11_abi"`
	CPUCapability string   `json:"cpu_capability"` // the kernels LibTorch dispatches to: DEFAULT, AVX2, AVX512
	MKL           bool     `json:"mkl"`
	OneDNN        string   `json:"onednn"` // version, "" when LibTorch has no oneDNN (MKL-DNN)
	BLASInfo      string   `json:"blas_info"`
	CUDABuild     bool     `json:"cuda_build"`
	CUDAAvailable bool     `json:"cuda_available"`
	Devices       []string `json:"devices"`
	BLAS          []string `json:"blas"`
	Threads       int      `json:"threads"`
	Stubbed       int      `json:"stubbed_functions"`
	// CUDA is what CheckCUDA proved; CUDABuild and CUDAAvailable above are
	// what the build and LibTorch claim.
	CUDA CUDAReport `json:"cuda"`
	// CPU is what the CPU runs natively: bf16 (else emulated, about 50x
	// slower) and int8 (VNNI or AMX).
	CPU CPUPrecision `json:"cpu"`
}

// Info gathers BuildInfo. Devices lists cpu and every visible CUDA device.
// It runs CheckCUDA: a matmul on each CUDA device.
func Info() BuildInfo {
	bi := BuildInfo{
		GoVersion:   runtime.Version(),
		LibTorch:    LibTorchVersion(),
		LibTorchLib: lib.LoraqaLibtorchLib,
		Source:      Source(),
		Flavour:     lib.LoraqaFlavour,
		CXX11ABI:    lib.LoraqaCXX11ABI,
		CUDABuild:   CUDABuild(),
		Devices:     []string{"cpu"},
		BLAS:        LoadedBLAS(),
		Threads:     Threads(),
		Stubbed:     lib.LoraqaStubbed,
	}
	bi.CPUCapability, bi.MKL, bi.OneDNN, bi.BLASInfo = parseConfig(lib.LoraqaShowConfig())
	bi.CUDAAvailable = CUDAAvailable()
	for i := 0; i < CUDADeviceCount(); i++ {
		bi.Devices = append(bi.Devices, "cuda:"+strconv.Itoa(i))
	}
	bi.CUDA = CheckCUDA()
	bi.CPU = HostCPU()
	return bi
}

// LoadedBLAS lists the BLAS/LAPACK libraries mapped into this process, with
// symlinks resolved: Debian's libblas.so.3 is netlib's slow reference BLAS unless
// it resolves into an optimised one such as openblas-pthread.
func LoadedBLAS() []string {
	seen := map[string]bool{}
	for _, p := range mappedFiles() {
		base := strings.ToLower(filepath.Base(p))
		if !strings.Contains(base, "blas") && !strings.Contains(base, "mkl") && !strings.Contains(base, "lapack") || strings.HasPrefix(base, "libcublas") {
			continue // cuBLAS is the GPU's, not the CPU's BLAS
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		seen[p] = true
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var blasInfoRe = regexp.MustCompile(`\bBLAS_INFO=([^, ]+)`)

// parseConfig reads the CPU capability in use, MKL, the oneDNN version and
// BLAS_INFO from at::show_config's text.
func parseConfig(cfg string) (capability string, mkl bool, onednn, blas string) {
	for _, line := range strings.Split(cfg, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "- CPU capability usage:"):
			capability = strings.TrimSpace(strings.TrimPrefix(l, "- CPU capability usage:"))
		case strings.HasPrefix(l, "- Intel(R) Math Kernel Library"), strings.HasPrefix(l, "- Intel(R) oneAPI Math Kernel Library"):
			mkl = true
		case strings.HasPrefix(l, "- Intel(R) MKL-DNN"), strings.HasPrefix(l, "- Intel(R) oneDNN"):
			onednn = strings.TrimSpace(l[strings.Index(l, "v"):])
			if i := strings.Index(onednn, " "); i > 0 {
				onednn = onednn[:i]
			}
		}
		if m := blasInfoRe.FindStringSubmatch(l); m != nil {
			blas = m[1]
		}
	}
	return
}
