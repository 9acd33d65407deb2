package torch

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	lib "github.com/sugarme/gotch/libtch"
)

// LibTorchVersion is the version of the LibTorch this binary was built against.
func LibTorchVersion() string { return lib.LoraqaLibtorchVersion }

// CUDABuild reports whether the binary links a CUDA LibTorch.
func CUDABuild() bool { return lib.LoraqaCUDABuild }

// BuildInfo is what doctor and bench report about the tensor backend.
type BuildInfo struct {
	GoVersion     string   `json:"go"`
	LibTorch      string   `json:"libtorch"`
	LibTorchLib   string   `json:"libtorch_lib"`
	CUDABuild     bool     `json:"cuda_build"`
	CUDAAvailable bool     `json:"cuda_available"`
	Devices       []string `json:"devices"`
	BLAS          []string `json:"blas"`
	Threads       int      `json:"threads"`
	Stubbed       int      `json:"stubbed_functions"`
}

// Info gathers BuildInfo. Devices lists cpu and every visible CUDA device.
func Info() BuildInfo {
	bi := BuildInfo{
		GoVersion:   runtime.Version(),
		LibTorch:    LibTorchVersion(),
		LibTorchLib: lib.LoraqaLibtorchLib,
		CUDABuild:   CUDABuild(),
		Devices:     []string{"cpu"},
		BLAS:        LoadedBLAS(),
		Threads:     Threads(),
		Stubbed:     lib.LoraqaStubbed,
	}
	bi.CUDAAvailable = CUDAAvailable()
	for i := 0; i < CUDADeviceCount(); i++ {
		bi.Devices = append(bi.Devices, "cuda:"+strconv.Itoa(i))
	}
	return bi
}

// LoadedBLAS lists the BLAS/LAPACK libraries mapped into this process, with
// symlinks resolved: Debian's libblas.so.3 is netlib's slow reference BLAS unless
// it resolves into an optimised one such as openblas-pthread.
func LoadedBLAS() []string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := fields[len(fields)-1]
		base := strings.ToLower(filepath.Base(p))
		if !strings.Contains(base, "blas") && !strings.Contains(base, "mkl") && !strings.Contains(base, "lapack") {
			continue
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
