package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/sugarme/gotch"
)

// configFlags adds --config and --set to a command's flags.
type configFlags struct {
	file string
	sets stringList
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "config file (YAML, JSON or TOML)")
	fs.Var(&c.sets, "set", "section.key=value override (repeatable), e.g. --set train.epochs=2")
}

func (c *configFlags) load() (*config.Config, error) {
	return config.Load(config.LoadOptions{File: c.file, Sets: c.sets})
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

func hubOptions() hub.Options { return hub.Options{Progress: os.Stderr} }

// featureOptions maps the config's data section onto the featurizer's options.
func featureOptions(c config.Data, seed int64) data.FeatureOptions {
	fo := data.DefaultFeatureOptions()
	fo.MaxSeqLength, fo.DocStride = c.MaxSeqLength, c.DocStride
	fo.Mode = data.Mode(c.Mode)
	fo.NegativeFraction = c.NegativeFraction
	fo.Seed = uint64(seed)
	return fo
}

func postOptions(c config.Data) data.PostprocessOptions {
	po := data.DefaultPostprocessOptions()
	if c.NBestSize > 0 {
		po.NBestSize = c.NBestSize
	}
	if c.MaxAnswerLength > 0 {
		po.MaxAnswerLength = c.MaxAnswerLength
	}
	po.NullScoreDiffThreshold = c.NullScoreDiffThreshold // used with version_2_with_negative (train.Job decides it)
	return po
}

// loraConfig maps the config's lora section onto PEFT's LoraConfig.
func loraConfig(c config.LoRA, base string) peft.Config {
	pc := peft.DefaultConfig()
	pc.R, pc.LoraAlpha, pc.LoraDropout = c.R, float64(c.Alpha), c.Dropout
	pc.TargetModules, pc.TargetRegex = nil, ""
	if len(c.TargetModules) == 1 && strings.ContainsAny(c.TargetModules[0], `.*+?()[]|\^$`) {
		pc.TargetRegex = c.TargetModules[0]
	} else {
		pc.TargetModules = append([]string(nil), c.TargetModules...)
	}
	pc.Bias, pc.UseRSLoRA = c.Bias, c.UseRSLoRA
	pc.InitLoraWeights = string(c.InitLoRAWeights)
	pc.LayersToTransform = c.LayersToTransform
	pc.ModulesToSave = c.ModulesToSave
	pc.UseDoRA, pc.LoraBias = c.UseDoRA, c.LoraBias
	pc.BaseModel = base
	return pc
}

// forceFlagDoc is the help of --force, which every command that runs a model has.
const forceFlagDoc = "run bf16 even on a CPU that emulates it (no avx512_bf16 or AMX: about 50x slower than fp32)"

// hostCPU is what this CPU runs natively, and hostRates how fast (variables:
// tests give another CPU's flags and rates).
var (
	hostCPU   = torch.HostCPU
	hostRates = torch.HostRates
)

// ratesFor is hostRates on the CPU; on CUDA, where auto does not weigh
// them, nothing is measured.
func ratesFor(dev gotch.Device) torch.Rates {
	if dev.IsCuda() {
		return torch.Rates{}
	}
	return hostRates()
}

// resolveDevice parses a device flag (or the device key) and resolves the
// dtype s, named by what, for it as resolveDType does: the two steps every
// command that runs a model starts with.
func resolveDevice(device, what, s string, force, infer bool) (gotch.Device, gotch.DType, string, error) {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return dev, gotch.Invalid, "", err
	}
	dt, warned, err := resolveDType(what, s, dev, force, infer)
	return dev, dt, warned, err
}

// logfExcept is logf without the message warned, which the command has said
// already: engine.Load and train.Run check the precision again for their
// library callers.
func logfExcept(warned string) func(format string, a ...any) {
	return func(format string, a ...any) {
		if msg := fmt.Sprintf(format, a...); warned == "" || msg != warned {
			logf("%s", msg)
		}
	}
}

// resolveDType parses a --dtype value (or the train.dtype key, named by
// what) for dev: "auto" becomes the precision torch.AutoDType picks here
// (torch.AutoInferenceDType when infer: the model only answers), from the
// CPU's flags and its measured rates, said on stderr; bf16 on a CPU that
// would emulate it is refused unless force, and then warned about; bf16 on
// the CPU where it measured slower than fp32 is warned about. It returns the
// warning it said, or "".
func resolveDType(what, s string, dev gotch.Device, force, infer bool) (gotch.DType, string, error) {
	auto := strings.EqualFold(strings.TrimSpace(s), "auto")
	var dt gotch.DType
	switch {
	case auto && infer: // here, not through ParseDType: tests give hostCPU another CPU
		dt = torch.AutoInferenceDType(dev, hostCPU(), ratesFor(dev))
	case auto:
		dt = torch.AutoDType(dev, hostCPU(), ratesFor(dev))
	default:
		var err error
		if dt, err = torch.ParseDType(s, dev); err != nil {
			return dt, "", usagef("%s: %v", what, err)
		}
	}
	warning, err := torch.CheckPrecision(dt, dev, hostCPU(), hostRates, force)
	if err != nil {
		return dt, "", fmt.Errorf("%s %s: %w", what, s, err)
	}
	if warning != "" {
		logf("%s", warning)
	}
	if auto {
		logf("%s auto: %s on %s", what, torch.DTypeName(dt), torch.DeviceName(dev))
	}
	return dt, warning, nil
}
