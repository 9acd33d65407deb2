package torch

// The NVIDIA driver API, reached through dlopen so that loraqa needs no CUDA
// headers and runs where there is no driver, and the CUDA runtime's version,
// looked up among the libraries already loaded (LibTorch links libcudart, in
// its cpu flavour too).

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef int (*loraqa_cu_i_t)(int*);
typedef int (*loraqa_cu_init_t)(unsigned int);
typedef int (*loraqa_cu_get_t)(int*, int);
typedef int (*loraqa_cu_name_t)(char*, int, int);
typedef int (*loraqa_cu_mem_t)(size_t*, int);
typedef int (*loraqa_cu_attr_t)(int*, int, int);
typedef int (*loraqa_cu_errname_t)(int, const char**);

static void* loraqa_cu;

// loraqa_cu_open dlopens the driver library once; on failure it writes
// dlerror's text into err and returns -1.
static int loraqa_cu_open(char* err, int n) {
	if (loraqa_cu) return 0;
	loraqa_cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!loraqa_cu) {
		const char* e = dlerror();
		snprintf(err, n, "%s", e ? e : "dlopen libcuda.so.1 failed");
		return -1;
	}
	return 0;
}

// Each call below returns the CUresult, or -1 when the driver lacks the symbol.
static int loraqa_cu_init(void) {
	loraqa_cu_init_t f = (loraqa_cu_init_t)dlsym(loraqa_cu, "cuInit");
	return f ? f(0) : -1;
}

static int loraqa_cu_driver_version(int* v) {
	loraqa_cu_i_t f = (loraqa_cu_i_t)dlsym(loraqa_cu, "cuDriverGetVersion");
	return f ? f(v) : -1;
}

static int loraqa_cu_device_count(int* n) {
	loraqa_cu_i_t f = (loraqa_cu_i_t)dlsym(loraqa_cu, "cuDeviceGetCount");
	return f ? f(n) : -1;
}

// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
static int loraqa_cu_device(int i, char* name, int n, int* major, int* minor, unsigned long long* mem) {
	loraqa_cu_get_t get = (loraqa_cu_get_t)dlsym(loraqa_cu, "cuDeviceGet");
	loraqa_cu_name_t gname = (loraqa_cu_name_t)dlsym(loraqa_cu, "cuDeviceGetName");
	loraqa_cu_mem_t gmem = (loraqa_cu_mem_t)dlsym(loraqa_cu, "cuDeviceTotalMem_v2");
	loraqa_cu_attr_t attr = (loraqa_cu_attr_t)dlsym(loraqa_cu, "cuDeviceGetAttribute");
	if (!get || !gname || !gmem || !attr) return -1;
	int dev = 0, rc;
	size_t bytes = 0;
	if ((rc = get(&dev, i)) != 0) return rc;
	if ((rc = gname(name, n, dev)) != 0) return rc;
	if ((rc = attr(major, 75, dev)) != 0) return rc;
	if ((rc = attr(minor, 76, dev)) != 0) return rc;
	if ((rc = gmem(&bytes, dev)) != 0) return rc;
	*mem = bytes;
	return 0;
}

// loraqa_cu_error_name is the CUresult's name (CUDA_ERROR_NO_DEVICE), or NULL.
static const char* loraqa_cu_error_name(int rc) {
	loraqa_cu_errname_t f = (loraqa_cu_errname_t)dlsym(loraqa_cu, "cuGetErrorName");
	const char* s = NULL;
	if (!f || f(rc, &s) != 0) return NULL;
	return s;
}

// loraqa_cudart_version is cudaRuntimeGetVersion of the libcudart already
// loaded: 0 with its result, -1 when none is loaded, else its error.
static int loraqa_cudart_version(int* v) {
	loraqa_cu_i_t f = (loraqa_cu_i_t)dlsym(RTLD_DEFAULT, "cudaRuntimeGetVersion");
	return f ? f(v) : -1;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// cuError names a CUresult: its name when the driver knows it, with its number.
func cuError(rc C.int) string {
	if rc == -1 {
		return "the driver library lacks the function"
	}
	if s := C.loraqa_cu_error_name(rc); s != nil {
		return fmt.Sprintf("%s (%d)", C.GoString(s), int(rc))
	}
	return fmt.Sprintf("CUresult %d", int(rc))
}

var (
	driverOnce  sync.Once
	driverProbe DriverProbe
)

// ProbeDriver asks the NVIDIA driver (libcuda.so.1, through dlopen) for its
// version and its devices. It initialises the driver once; a machine without
// one gets a DriverProbe whose Error says why.
func ProbeDriver() DriverProbe {
	driverOnce.Do(func() { driverProbe = probeDriver() })
	return driverProbe
}

func probeDriver() DriverProbe {
	var p DriverProbe
	var buf [512]C.char
	if C.loraqa_cu_open(&buf[0], C.int(len(buf))) != 0 {
		p.Error = "no NVIDIA driver: " + C.GoString(&buf[0])
		return p
	}
	p.Loaded = true
	var v C.int
	if rc := C.loraqa_cu_driver_version(&v); rc == 0 {
		p.Version = cudaVersion(int(v))
	}
	if rc := C.loraqa_cu_init(); rc != 0 {
		p.Error = "cuInit: " + cuError(rc)
		return p
	}
	var n C.int
	if rc := C.loraqa_cu_device_count(&n); rc != 0 {
		p.Error = "cuDeviceGetCount: " + cuError(rc)
		return p
	}
	for i := 0; i < int(n); i++ {
		var name [256]C.char
		var major, minor C.int
		var mem C.ulonglong
		d := DeviceInfo{Index: i}
		if rc := C.loraqa_cu_device(C.int(i), &name[0], C.int(len(name)), &major, &minor, &mem); rc != 0 {
			d.Error = "device query: " + cuError(rc)
		} else {
			d.Name = C.GoString((*C.char)(unsafe.Pointer(&name[0])))
			d.ComputeCapability = fmt.Sprintf("%d.%d", int(major), int(minor))
			d.TotalMemory = uint64(mem)
		}
		p.Devices = append(p.Devices, d)
	}
	return p
}

// CUDARuntimeVersion is the version of the CUDA runtime (libcudart) loaded
// with LibTorch, as "12.1"; "" when none is loaded. LibTorch's cpu flavour
// from PyPI links libcudart too, so a version here does not make a CUDA build.
func CUDARuntimeVersion() string {
	var v C.int
	if C.loraqa_cudart_version(&v) != 0 {
		return ""
	}
	return cudaVersion(int(v))
}

// cudaVersion turns CUDA's integer version (12040) into "12.4".
func cudaVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}
