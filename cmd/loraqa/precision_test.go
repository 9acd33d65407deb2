package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// Three machine kinds' cpuinfo: a Zen 3 emulates bf16, a Zen 4 has
// avx512_bf16, a Cascade Lake has VNNI (int8 with 8-bit activations) but no
// bf16.
var (
	zen3    = torch.ParseCPUInfo("model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n")
	zen4    = torch.ParseCPUInfo("model name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n")
	cascade = torch.ParseCPUInfo("model name\t: Intel(R) Xeon(R) Platinum 8259CL\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
	// noAMX has avx512_bf16 but no AMX, and slowBF16 is what its GEMMs
	// measured (2026-12-04): bf16 at half fp32's rate, int8 at 1.8x.
	noAMX    = torch.ParseCPUInfo("model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx2 avx512f avx_vnni avx512_bf16 avx512_vnni\n")
	slowBF16 = torch.Rates{FP32: 156, BF16: 75, Int8: 287}
)

// onCPU makes the commands see cpu's flags, and rates (none: not measured,
// the flags decide), until the test ends.
func onCPU(t *testing.T, cpu torch.CPUPrecision, rates ...torch.Rates) {
	oldCPU, oldRates := hostCPU, hostRates
	var r torch.Rates
	if len(rates) > 0 {
		r = rates[0]
	}
	hostCPU = func() torch.CPUPrecision { return cpu }
	hostRates = func() torch.Rates { return r }
	t.Cleanup(func() { hostCPU, hostRates = oldCPU, oldRates })
}

// predictBF16 answers one question with the tiny BERT fixture in bf16.
func predictBF16(t *testing.T, extra ...string) (string, error) {
	base, adapter := tinyBERTAdapter(t)
	args := append([]string{"--model", base, "--adapter", adapter, "--device", "cpu", "--dtype", "bf16",
		"--question", "who works at acme?", "--context", "alice works at acme."}, extra...)
	return stderr(t, func() error {
		_, err := stdout(t, func() error { return runPredict(context.Background(), args) })
		return err
	})
}

// TestBF16WhereTheCPUEmulatesIt: predict --dtype bf16 on a CPU without
// avx512_bf16 or AMX is refused with the CPU, the slowdown and --force
// named; with --force it runs and warns; on a CPU with avx512_bf16 it runs
// with no warning.
func TestBF16WhereTheCPUEmulatesIt(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		onCPU(t, zen3)
		_, err := predictBF16(t)
		require.ErrorIs(t, err, torch.ErrEmulatedBF16)
		for _, s := range []string{"--dtype bf16", "AMD EPYC 7B13", "about 50x slower", "--force"} {
			assert.ErrorContains(t, err, s)
		}
	})
	t.Run("forced", func(t *testing.T) {
		onCPU(t, zen3)
		log, err := predictBF16(t, "--force")
		require.NoError(t, err)
		assert.Contains(t, log, "warning: bf16 is emulated on this CPU")
	})
	t.Run("native", func(t *testing.T) {
		onCPU(t, zen4)
		log, err := predictBF16(t)
		require.NoError(t, err)
		assert.NotContains(t, log, "emulated")
	})
}

// TestBF16OnThisCPU decides from this machine's flags: bf16 is refused
// exactly where the CPU lacks avx512_bf16 and AMX.
func TestBF16OnThisCPU(t *testing.T) {
	_, err := predictBF16(t)
	if torch.HostCPU().BF16Native {
		require.NoError(t, err, "this CPU has %v", torch.HostCPU().Flags)
	} else {
		require.ErrorIs(t, err, torch.ErrEmulatedBF16, "this CPU has %v", torch.HostCPU().Flags)
	}
}

// TestDTypeAuto: auto is bf16 where it is native; else, to answer, int8
// where its activations get 8 bits (VNNI) and this LibTorch has int8, and
// fp32 otherwise; to train, fp32. It says which on stderr.
func TestDTypeAuto(t *testing.T) {
	int8Here := gotch.Int8
	if torch.Int8Available() != nil { // Debian's LibTorch 1.13: no fbgemm
		int8Here = gotch.Float
	}
	for _, c := range []struct {
		cpu          torch.CPUPrecision
		infer, train gotch.DType
	}{
		{zen3, gotch.Float, gotch.Float},
		{zen4, gotch.BFloat16, gotch.BFloat16},
		{cascade, int8Here, gotch.Float},
	} {
		onCPU(t, c.cpu)
		for _, infer := range []bool{true, false} {
			want := c.train
			if infer {
				want = c.infer
			}
			var dt gotch.DType
			log, err := stderr(t, func() (err error) {
				dt, _, err = resolveDType("--dtype", "auto", gotch.CPU, false, infer)
				return err
			})
			require.NoError(t, err)
			assert.Equal(t, want, dt, "%s, infer %v", c.cpu.Model, infer)
			assert.Contains(t, log, "--dtype auto: "+torch.DTypeName(want)+" on cpu")
		}
	}
}

// TestDTypeMeasured: where bf16 measured slower than fp32 (avx512_bf16, no
// AMX), auto answers in int8 and trains in fp32, and an explicit bf16 runs
// with a warning that gives both rates and what auto would pick; where bf16
// measured 2.4x fp32's rate, it runs without one.
func TestDTypeMeasured(t *testing.T) {
	int8Here := gotch.Int8
	if torch.Int8Available() != nil {
		int8Here = gotch.Float
	}
	onCPU(t, noAMX, slowBF16)
	for infer, want := range map[bool]gotch.DType{true: int8Here, false: gotch.Float} {
		dt, _, err := resolveDType("--dtype", "auto", gotch.CPU, false, infer)
		require.NoError(t, err)
		assert.Equal(t, want, dt, "infer %v", infer)
	}
	log, err := predictBF16(t)
	require.NoError(t, err)
	// engine.Load warns from this machine's own flags and rates, which these
	// tests cannot replace: only the command's warning is looked for.
	assert.Equal(t, 1, strings.Count(log, "warning: bf16 gains little or nothing over fp32 on this CPU: one linear at 75 against 156 GFLOP/s (Intel(R) Xeon(R) Processor, flags: avx2 avx512f avx512_vnni avx_vnni avx512_bf16); dtype auto picks "+torch.DTypeName(int8Here)+" to answer"), log)
	onCPU(t, zen4, torch.Rates{FP32: 100, BF16: 240})
	log, err = predictBF16(t)
	require.NoError(t, err)
	assert.NotContains(t, log, "against 100 GFLOP/s", "bf16 faster than fp32: nothing to warn of")
}

// TestLogfExcept: the warning the command said is not said again by the
// library it hands logfExcept to; anything else is.
func TestLogfExcept(t *testing.T) {
	log, err := stderr(t, func() error {
		say := logfExcept("warning: bf16 is slow")
		say("warning: %s", "bf16 is slow")
		say("loaded %d adapters", 2)
		logfExcept("")("warning: %s", "bf16 is slow")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "loaded 2 adapters\nwarning: bf16 is slow\n", log)
}

// TestPredictAutoInt8: predict --dtype auto on a VNNI CPU without bf16
// runs the base in int8 and answers as fp32 does on the tiny fixture.
func TestPredictAutoInt8(t *testing.T) {
	if err := torch.Int8Available(); err != nil {
		t.Skip(err)
	}
	base, adapter := tinyBERTAdapter(t)
	predict := func(dtype string) (string, string) {
		args := []string{"--model", base, "--adapter", adapter, "--device", "cpu", "--dtype", dtype,
			"--question", "who works at acme?", "--context", "alice works at acme."}
		var out string
		log, err := stderr(t, func() (err error) {
			out, err = stdout(t, func() error { return runPredict(context.Background(), args) })
			return err
		})
		require.NoError(t, err, log)
		return out, log
	}
	var want, got map[string]any
	out, _ := predict("fp32")
	require.NoError(t, json.Unmarshal([]byte(out), &want), out)
	onCPU(t, cascade)
	out, log := predict("auto")
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Contains(t, log, "--dtype auto: int8 on cpu")
	for _, k := range []string{"answer", "start", "end"} {
		assert.Equal(t, want[k], got[k], k)
	}
	assert.InDelta(t, want["score"], got["score"], 0.05, "int8 moves the score a little")
	assert.NotEqual(t, want["score"], got["score"], "the same score to the bit: not int8")
}

// TestDoctorReportsCPUPrecision: doctor --json has the CPU's bf16 and int8
// fields as /proc/cpuinfo gives them and the GEMM rates it measured, and
// the text report says them.
func TestDoctorReportsCPUPrecision(t *testing.T) {
	out, err := stdout(t, func() error { return runDoctor(context.Background(), []string{"--json"}) })
	require.NoError(t, err)
	var got struct {
		CPU  *torch.CPUPrecision `json:"cpu"`
		Auto dtypeAuto           `json:"dtype_auto"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.NotNil(t, got.CPU, out)
	assert.Equal(t, torch.HostCPU(), *got.CPU)
	assert.Equal(t, torch.HostRates(), got.Auto.Rates)
	assert.True(t, got.Auto.Rates.Measured(), out)
	text, err := stdout(t, func() error { return runDoctor(context.Background(), nil) })
	require.NoError(t, err)
	assert.Regexp(t, `cpu precision +bf16 (native|not native \(emulated, about 50x slower than fp32\)), int8 (native|not native \(no VNNI/AMX\)) with [78]-bit activations`, text)
	assert.Regexp(t, `cpu gemm rate +fp32 [0-9]+, bf16 ([0-9]+|-), int8 ([0-9]+|-) GFLOP/s`, text)
}

// TestDoctorDTypeAuto: doctor says what --dtype auto picks on the default
// device, to answer and to train, as resolveDType does.
func TestDoctorDTypeAuto(t *testing.T) {
	if dev, _ := torch.ParseDevice("auto"); dev.IsCuda() {
		t.Skip("the default device is CUDA here: the CPU's flags decide nothing")
	}
	int8Here := "int8"
	if torch.Int8Available() != nil {
		int8Here = "fp32"
	}
	for _, c := range []struct {
		cpu           torch.CPUPrecision
		answer, train string
	}{{zen3, "fp32", "fp32"}, {zen4, "bf16", "bf16"}, {cascade, int8Here, "fp32"}} {
		onCPU(t, c.cpu)
		out, err := stdout(t, func() error { return runDoctor(context.Background(), []string{"--json"}) })
		require.NoError(t, err)
		var got struct {
			Auto dtypeAuto `json:"dtype_auto"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		assert.Equal(t, dtypeAuto{Device: "cpu", Answer: c.answer, Train: c.train}, got.Auto, c.cpu.Model)
		text, err := stdout(t, func() error { return runDoctor(context.Background(), nil) })
		require.NoError(t, err)
		assert.Contains(t, text, "dtype auto       on cpu: "+c.answer+" to answer, "+c.train+" to train", c.cpu.Model)
	}
}
