package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

func runDoctor(ctx context.Context, args []string) error {
	fs := newFlags("doctor", "[--json]")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	info := torch.Info()
	auto := autoDTypes()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			torch.BuildInfo
			DTypeAuto dtypeAuto `json:"dtype_auto"`
		}{info, auto})
	}
	fmt.Printf("go               %s\n", info.GoVersion)
	fmt.Printf("libtorch         %s (%s)\n", info.LibTorch, info.LibTorchLib)
	fmt.Printf("source           %s, %s flavour, C++11 ABI %v\n", info.Source, info.Flavour, info.CXX11ABI)
	onednn := info.OneDNN
	if onednn == "" {
		onednn = "none"
	}
	fmt.Printf("kernels          cpu capability %s, blas %s, mkl %v, onednn %s\n", info.CPUCapability, info.BLASInfo, info.MKL, onednn)
	fmt.Printf("cpu              %s\n", info.CPU.Model)
	fmt.Printf("cpu precision    bf16 %s, int8 %s with %d-bit activations (flags: %s)\n", nativeOrNot(info.CPU.BF16Native, "emulated, "+torch.EmulatedSlowdown),
		nativeOrNot(info.CPU.Int8Native, "no VNNI/AMX"), info.CPU.Int8ActivationBits, strings.Join(info.CPU.Flags, " "))
	fmt.Printf("cpu gemm rate    fp32 %s, bf16 %s, int8 %s GFLOP/s (one 384x768x768 linear)\n", rate(auto.Rates.FP32), rate(auto.Rates.BF16), rate(auto.Rates.Int8))
	fmt.Printf("dtype auto       on %s: %s to answer, %s to train\n", auto.Device, auto.Answer, auto.Train)
	fmt.Printf("cuda build       %v\n", info.CUDABuild)
	printCUDA(info.CUDA)
	fmt.Printf("devices          %s\n", strings.Join(info.Devices, ", "))
	fmt.Printf("threads          %d\n", info.Threads)
	fmt.Printf("stubbed funcs    %d (gotch wrappers this LibTorch lacks)\n", info.Stubbed)
	blas := strings.Join(info.BLAS, ", ")
	if blas == "" {
		blas = "(none mapped)"
	}
	fmt.Printf("blas             %s\n", blas)
	for _, b := range info.BLAS {
		if strings.HasSuffix(b, "/libblas.so.3") && !strings.Contains(b, "openblas") && !strings.Contains(b, "blis") && !strings.Contains(b, "mkl") {
			fmt.Println("warning: the reference (netlib) BLAS is loaded: GEMM is ~40x slower; install libopenblas0-pthread")
		}
	}
	return nil
}

// dtypeAuto is what --dtype auto (train.dtype auto) picks on the default
// device.
type dtypeAuto struct {
	Device string `json:"device"`
	Answer string `json:"answer"` // predict, eval, serve, bench infer
	Train  string `json:"train"`
	// Rates is what the CPU's GEMMs measured, which auto weighs.
	Rates torch.Rates `json:"cpu_rates"`
}

// autoDTypes is what auto picks here, for doctor.
func autoDTypes() dtypeAuto {
	dev, err := torch.ParseDevice("auto")
	if err != nil {
		dev = gotch.CPU
	}
	cpu, r := hostCPU(), hostRates()
	return dtypeAuto{Device: torch.DeviceName(dev), Answer: torch.DTypeName(torch.AutoInferenceDType(dev, cpu, r)),
		Train: torch.DTypeName(torch.AutoDType(dev, cpu, r)), Rates: r}
}

// rate is a measured rate in GFLOP/s, or "-" where there is none.
func rate(gflops float64) string {
	if gflops <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", gflops)
}

// nativeOrNot says "native", or "not native" with why.
func nativeOrNot(native bool, why string) string {
	if native {
		return "native"
	}
	return "not native (" + why + ")"
}

// printCUDA prints what CheckCUDA proved: libtorch_cuda mapped or not, the
// driver and runtime versions, each device and its matmul against the CPU.
func printCUDA(c torch.CUDAReport) {
	loaded := "not loaded"
	if c.LibTorchCUDA {
		loaded = "loaded (" + c.LibTorchCUDAPath + ")"
	}
	fmt.Printf("libtorch_cuda    %s\n", loaded)
	driver := orNone(c.Driver.Version)
	if c.Driver.Error != "" {
		driver += " (" + c.Driver.Error + ")"
	}
	fmt.Printf("nvidia driver    %s\n", driver)
	fmt.Printf("cuda runtime     %s\n", orNone(c.RuntimeVersion))
	for _, d := range c.Devices {
		if d.Error != "" {
			fmt.Printf("gpu %d            %s\n", d.Index, d.Error)
			continue
		}
		fmt.Printf("gpu %d            %s, compute capability %s, %.1f GiB\n", d.Index, d.Name, d.ComputeCapability, float64(d.TotalMemory)/(1<<30))
		if m := d.Matmul; m != nil {
			verdict := "pass"
			switch {
			case m.Error != "":
				verdict = "FAIL: " + m.Error
			case !m.Pass:
				verdict = "FAIL"
			}
			fmt.Printf("  matmul         %dx%d on %s vs %s: max abs diff %.3g (tolerance %g) %s\n", c.MatmulSize, c.MatmulSize, m.Device, m.Reference, m.MaxAbsDiff, m.Tolerance, verdict)
		}
	}
	avail := fmt.Sprint(c.Available)
	if c.Reason != "" {
		avail += ": " + c.Reason
	}
	fmt.Printf("cuda available   %s\n", avail)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
