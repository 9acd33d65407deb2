package main

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// torch 2.1.2's METADATA (abridged): CUDA wheels pinned one by one.
const meta212 = `Metadata-Version: 2.1
Name: torch
Version: 2.1.2
Requires-Dist: filelock
Requires-Dist: typing-extensions
Requires-Dist: nvidia-cuda-nvrtc-cu12 (==12.1.105) ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: nvidia-cuda-runtime-cu12 (==12.1.105) ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: nvidia-cudnn-cu12 (==8.9.2.26) ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: triton (==2.1.0) ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: jinja2 ; extra == 'dynamo'
`

// torch 2.15.0's METADATA (abridged): most CUDA wheels come through cuda-toolkit's extras.
const meta215 = `Metadata-Version: 2.4
Name: torch
Version: 2.15.0
Requires-Dist: cuda-toolkit[cublas,cudart,cupti]==13.2.2; platform_system == "Linux"
Requires-Dist: nvidia-cudnn-cu13==9.26.0.51; platform_system == "Linux"
Requires-Dist: opt-einsum>=3.3; extra == "opt-einsum"
`

// cuda-toolkit 13.2.2's METADATA (abridged).
const metaToolkit = `Metadata-Version: 2.1
Name: cuda-toolkit
Version: 13.2.2
Requires-Dist: nvidia-cublas==13.4.1.3.*; (sys_platform == 'linux' and platform_machine == 'x86_64') and extra == 'all'
Requires-Dist: nvidia-cublas==13.4.1.3.*; (sys_platform == 'linux' and platform_machine == 'aarch64' or sys_platform == 'linux' and platform_machine == 'x86_64') and extra == 'cublas'
Requires-Dist: nvidia-cuda-runtime==13.2.86.*; (sys_platform == 'linux' and platform_machine == 'x86_64') and extra == 'cudart'
Requires-Dist: nvidia-cuda-cupti==13.2.86.*; (sys_platform == 'linux' and platform_machine == 'x86_64') and extra == 'cupti'
Requires-Dist: nvidia-cufft==12.2.0.57.*; (sys_platform == 'linux' and platform_machine == 'x86_64') and extra == 'cufft'
Requires-Dist: nvidia-cudla==13.2.86.*; (sys_platform == 'linux' and platform_machine == 'aarch64') and extra == 'cudla'
`

// cuda-toolkit 13.0.2's METADATA (torch 2.11's; abridged): its markers name no machine.
const metaToolkit1302 = `Metadata-Version: 2.1
Name: cuda-toolkit
Version: 13.0.2
Requires-Dist: nvidia-cublas==13.1.0.3.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'all'
Requires-Dist: nvidia-cublas==13.1.0.3.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cublas'
Requires-Dist: nvidia-cufile==1.15.1.6.*; (sys_platform == 'linux') and extra == 'cufile'
Requires-Dist: nvidia-nvjitlink==13.0.88.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'nvjitlink'
Requires-Dist: nvidia-npp==13.0.1.2.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'npp'
`

const meta211 = `Metadata-Version: 2.4
Name: torch
Version: 2.11.0
Requires-Dist: cuda-toolkit[cublas,cufile,nvjitlink]==13.0.2; platform_system == "Linux"
Requires-Dist: nvidia-nvshmem-cu13==3.4.5; platform_system == "Linux"
`

func writeWheel(t *testing.T, path, distInfo, meta string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	w, err := zw.Create(distInfo + "/METADATA")
	require.NoError(t, err)
	_, err = w.Write([]byte(meta))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}

func TestNvidiaRequirements(t *testing.T) {
	tests := []struct {
		name    string
		meta    string // torch's METADATA
		toolkit string // the version of a cuda-toolkit wheel already downloaded (so no pip runs), or ""
		tkMeta  string // its METADATA
		want    map[string]string
	}{
		{"torch 2.1.2 requires nvidia packages itself", meta212, "", "", map[string]string{
			"nvidia-cuda-nvrtc-cu12": "==12.1.105", "nvidia-cuda-runtime-cu12": "==12.1.105", "nvidia-cudnn-cu12": "==8.9.2.26",
		}},
		// torch >= 2.9: the extras of cuda-toolkit.
		{"only the extras torch asks for, x86-64 only", meta215, "13.2.2", metaToolkit, map[string]string{
			"nvidia-cublas": "==13.4.1.3.*", "nvidia-cuda-runtime": "==13.2.86.*", "nvidia-cuda-cupti": "==13.2.86.*",
			"nvidia-cudnn-cu13": "==9.26.0.51",
		}},
		{"torch 2.11: cuda-toolkit 13.0.2's markers say linux, no machine", meta211, "13.0.2", metaToolkit1302, map[string]string{
			"nvidia-cublas": "==13.1.0.3.*", "nvidia-cufile": "==1.15.1.6.*", "nvidia-nvjitlink": "==13.0.88.*",
			"nvidia-nvshmem-cu13": "==3.4.5",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.toolkit != "" {
				writeWheel(t, filepath.Join(dir, "cuda_toolkit-"+tc.toolkit+"-py2.py3-none-any.whl"), "cuda_toolkit-"+tc.toolkit+".dist-info", tc.tkMeta)
			}
			reqs, err := nvidiaRequirements(tc.meta, dir, false)
			require.NoError(t, err)
			assert.Equal(t, tc.want, reqs)
		})
	}
}

func TestWheelFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"torch-2.1.2-cp311-cp311-manylinux1_x86_64.whl", "nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl", "notes.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), nil, 0o644))
	}
	assert.Equal(t, filepath.Join(dir, "torch-2.1.2-cp311-cp311-manylinux1_x86_64.whl"), wheelFile(dir, "torch"))
	assert.True(t, strings.HasSuffix(wheelFile(dir, "nvidia-cuda-runtime-cu12"), "nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl"))
	assert.Equal(t, "", wheelFile(dir, "nvidia-cuda-runtime"), "another distribution, not a prefix match")
}

// TestABIOfThisBuild reads the ABI of the LibTorch this checkout was set up
// with (.build/libtorch.json) from its libc10, as setup does.
func TestABIOfThisBuild(t *testing.T) {
	res, err := readResult(filepath.Join("..", "..", ".build", "libtorch.json"))
	if err != nil {
		t.Fatalf("run make setup first: %v", err)
	}
	cxx11, ok := abiOf(res.Lib)
	require.True(t, ok, "c10::Error's constructor is exported by %s/libc10.so", res.Lib)
	assert.Equal(t, res.CXX11ABI, cxx11)
	if res.Source == "pypi" && strings.HasPrefix(res.Version, "2.1.") {
		assert.False(t, cxx11, "PyPI's torch 2.1 wheels use the pre-C++11 ABI")
	}
	if res.Source == "debian" {
		assert.True(t, cxx11, "Debian builds with the C++11 ABI")
	}
}
