package torch

import (
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func randomBytes(seed int64) string {
	ManualSeed(seed)
	t := ts.MustRandn([]int64{64}, gotch.Float, gotch.CPU)
	defer t.MustDrop()
	u := ts.MustRand([]int64{16}, gotch.Float, gotch.CPU)
	defer u.MustDrop()
	v := make([]float32, 80)
	t.MustCopyData(v[:64], 64)
	u.MustCopyData(v[64:], 16)
	return hex.EncodeToString(Float32Bytes(v))
}

// TestSeedChild prints the seeded random tensors when run as a child process.
func TestSeedChild(t *testing.T) {
	if os.Getenv("LORAQA_SEED_CHILD") != "1" {
		return // not started as the child of TestSeedTwoProcesses: nothing to do
	}
	os.Stdout.WriteString("RANDOM=" + randomBytes(1234) + "\n")
}

func TestSeedTwoProcesses(t *testing.T) {
	run := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSeedChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LORAQA_SEED_CHILD=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "RANDOM=") {
				return strings.TrimPrefix(l, "RANDOM=")
			}
		}
		t.Fatalf("child printed no RANDOM= line: %s", out)
		return ""
	}
	a, b := run(), run()
	require.Len(t, a, 80*8)
	assert.Equal(t, a, b, "the same seed must give bit-identical tensors in two processes")
	assert.Equal(t, a, randomBytes(1234), "and in this process")
	assert.NotEqual(t, a, randomBytes(1235), "another seed gives other values")
}

func TestNoGradRestoresModeAndSurvivesPanic(t *testing.T) {
	runtime.LockOSThread() // grad mode is per OS thread
	defer runtime.UnlockOSThread()
	require.True(t, GradEnabled())
	NoGrad(func() {
		assert.False(t, GradEnabled())
		NoGrad(func() { assert.False(t, GradEnabled()) })
		assert.False(t, GradEnabled(), "nested NoGrad must restore 'off', not switch grad on")
	})
	assert.True(t, GradEnabled())
	func() {
		defer func() { _ = recover() }()
		NoGrad(func() { panic("boom") })
	}()
	assert.True(t, GradEnabled(), "grad mode restored after a panic")

	w := ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	defer w.MustDrop()
	var y *ts.Tensor
	NoGrad(func() { y = w.MustMulScalar(ts.FloatScalar(2), false) })
	defer y.MustDrop()
	assert.False(t, y.MustRequiresGrad(), "no graph is recorded under NoGrad")
}

// TestLiveTensorsCounts: the count follows every tensor made and freed,
// results of operations and views included, whatever the order of the drops.
func TestLiveTensorsCounts(t *testing.T) {
	start := LiveTensors()
	x := ts.MustOnes([]int64{8, 8}, gotch.Float, gotch.CPU)
	require.Equal(t, start+1, LiveTensors())
	for i := 0; i < 20; i++ {
		a := x.MustMatmul(x, false)
		b := a.MustAddScalar(ts.FloatScalar(1), false)
		v := b.MustSelect(0, 0, false) // a view is a tensor of its own
		require.Equal(t, start+4, LiveTensors(), "iteration %d", i)
		b.MustDrop()
		require.Equal(t, start+3, LiveTensors())
		a.MustDrop()
		v.MustDrop()
		require.Equal(t, start+1, LiveTensors())
	}
	y := x.MustMulScalar(ts.FloatScalar(2), true) // del: x is freed
	assert.Equal(t, start+1, LiveTensors())
	y.MustDrop()
	assert.Equal(t, start, LiveTensors())
}

func TestParseDevice(t *testing.T) {
	d, err := ParseDevice("cpu")
	require.NoError(t, err)
	assert.Equal(t, "cpu", DeviceName(d))
	d, err = ParseDevice("auto")
	require.NoError(t, err)
	if !CUDAAvailable() {
		assert.Equal(t, "cpu", DeviceName(d))
		_, err = ParseDevice("cuda")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "cuda")
	}
	for _, bad := range []string{"gpu", "cuda:x", "cuda:-1", "tpu:0"} {
		_, err := ParseDevice(bad)
		assert.Error(t, err, bad)
	}
}

func TestInfo(t *testing.T) {
	bi := Info()
	assert.NotEmpty(t, bi.LibTorch)
	assert.Contains(t, bi.Devices, "cpu")
	if !bi.CUDABuild {
		assert.False(t, bi.CUDAAvailable)
	}
	assert.Greater(t, bi.Threads, 0)
}

func TestParseConfig(t *testing.T) {
	// at::show_config of PyPI's torch 2.1.2 (abridged) and of Debian's 1.13.1.
	pypi := "PyTorch built with:\n  - GCC 9.3\n  - Intel(R) oneAPI Math Kernel Library Version 2022.2-Product Build 20220804 for Intel(R) 64 architecture applications\n" +
		"  - Intel(R) MKL-DNN v3.1.1 (Git Hash 64f6bcbcbab628e96f33a62c3e975f8535a7bde4)\n  - CPU capability usage: AVX512\n" +
		"  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=12.1, LAPACK_INFO=mkl, USE_MKL=ON, \n"
	capability, mkl, onednn, blas := parseConfig(pypi)
	assert.Equal(t, "AVX512", capability)
	assert.True(t, mkl)
	assert.Equal(t, "v3.1.1", onednn)
	assert.Equal(t, "mkl", blas)
	debian := "PyTorch built with:\n  - GCC 12.2\n  - CPU capability usage: AVX2\n  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, USE_MKL=OFF, USE_MKLDNN=OFF, \n"
	capability, mkl, onednn, blas = parseConfig(debian)
	assert.Equal(t, "AVX2", capability)
	assert.False(t, mkl)
	assert.Equal(t, "", onednn)
	assert.Equal(t, "open", blas)
}

func TestBuildInfoMatchesThisLibTorch(t *testing.T) {
	bi := Info()
	assert.Equal(t, LibTorchVersion(), bi.LibTorch)
	assert.Contains(t, []string{"cpu", "cuda"}, bi.Flavour)
	assert.Equal(t, bi.Flavour == "cuda", bi.CUDABuild)
	assert.NotEmpty(t, bi.CPUCapability, "at::show_config names the CPU capability")
	assert.Contains(t, BuildConfig(), "PyTorch built with")
}

func TestCatchTurnsLibTorchFailuresIntoErrors(t *testing.T) {
	a := ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU)
	defer a.MustDrop()
	b := ts.MustOnes([]int64{4, 5}, gotch.Float, gotch.CPU)
	defer b.MustDrop()
	err := Catch(func() { a.MustMatmul(b, false) })
	require.Error(t, err)
	var le *Error
	require.ErrorAs(t, err, &le)
	assert.Contains(t, le.Msg, "cannot be multiplied", "LibTorch's own message")
	assert.NotContains(t, err.Error(), "frame #", "no C++ backtrace")
	assert.NotContains(t, err.Error(), "goroutine", "no Go stack")
	assert.False(t, le.IsOutOfMemory())

	idx := ts.MustOfSlice([]int64{0, 7})
	defer idx.MustDrop()
	err = Catch(func() { ts.MustEmbedding(a, idx, -1, false, false) })
	require.ErrorAs(t, err, &le)
	assert.Contains(t, le.Msg, "index out of range")

	assert.NoError(t, Catch(func() { a.MustAdd(a, false).MustDrop() }), "a good op after a failure works")
	assert.PanicsWithValue(t, "not torch", func() { _ = Catch(func() { panic("not torch") }) }, "other panics pass through")
}

func TestParseDType(t *testing.T) {
	for _, c := range []struct {
		in   string
		want gotch.DType
	}{{"fp32", gotch.Float}, {"", gotch.Float}, {"bf16", gotch.BFloat16}, {"BF16", gotch.BFloat16}, {"bfloat16", gotch.BFloat16}} {
		got, err := ParseDType(c.in, gotch.CPU)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		assert.Equal(t, DTypeName(got), map[gotch.DType]string{gotch.Float: "fp32", gotch.BFloat16: "bf16"}[got])
	}
	_, err := ParseDType("fp16", gotch.CPU)
	assert.ErrorContains(t, err, "needs a CUDA device; on the CPU use bf16")
	got, err := ParseDType("fp16", gotch.CudaBuilder(0))
	require.NoError(t, err)
	assert.Equal(t, gotch.Half, got)
	_, err = ParseDType("int4", gotch.CPU)
	assert.ErrorContains(t, err, `dtype "int4": want fp32, bf16, fp16, int8 or auto`)

	// int8: the CPU only, where LibTorch has fbgemm.
	_, err = ParseDType("int8", gotch.CudaBuilder(0))
	assert.ErrorContains(t, err, "dtype int8 runs on the CPU only")
	_, err = CheckDType(gotch.Int8, gotch.CudaBuilder(0))
	assert.ErrorContains(t, err, "dtype int8 runs on the CPU only")
	got, err = ParseDType("INT8", gotch.CPU)
	if avail := Int8Available(); avail != nil {
		assert.ErrorContains(t, err, "fbgemm", "LibTorch %s has no int8 engine: the error says why", LibTorchVersion())
		return
	}
	require.NoError(t, err)
	assert.Equal(t, gotch.Int8, got)
	assert.Equal(t, "int8", DTypeName(got))
}

// TestABIMatchesLibTorch: the C++ ABI the build was set up with (read by
// tools/setup from c10::Error's exported constructor) is the one LibTorch
// says it was compiled with, where its build config says so.
func TestABIMatchesLibTorch(t *testing.T) {
	cfg := BuildConfig()
	i := strings.Index(cfg, "_GLIBCXX_USE_CXX11_ABI=")
	if i < 0 {
		// Debian's 1.13 does not print its compiler flags; it is built with the C++11 ABI.
		assert.True(t, Info().CXX11ABI, "a LibTorch that does not name its ABI here is Debian's, built with the C++11 ABI")
		return
	}
	want := cfg[i+len("_GLIBCXX_USE_CXX11_ABI=")] == '1'
	assert.Equal(t, want, Info().CXX11ABI, "doctor's cxx11_abi")
}
