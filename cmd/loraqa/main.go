// Command loraqa fine-tunes extractive question-answering models with LoRA
// adapters on LibTorch, and serves them.
//
// Run `loraqa help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/loraqa/loraqa/torch"
)

// command is one subcommand: its run function gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the command table: every loraqa command, its one-line summary
// (usage lists them sorted) and the function that runs it.
var commands = map[string]command{
	"train":    {"fine-tune a LoRA adapter (config file, env, --set)", runTrain},
	"prepare":  {"read Q&A pairs, build the QA dataset, split it into train/test JSONL", runPrepare},
	"features": {"write the model's training windows (ids, offsets, labels) as JSONL", runFeatures},
	"predict":  {"answer a question over a context with an adapter (or a QA model)", runPredict},
	"eval":     {"exact match and F1 of an adapter on a QA file", runEval},
	"serve":    {"answer questions over HTTP with one base model and any number of adapters", runServe},
	"export":   {"fold an adapter into its base: a standalone HF QA model directory", runExport},
	"sweep":    {"run a hyperparameter grid of train trials (or emit it for Slurm / Kubernetes)", runSweep},
	"verify":   {"check the model, LoRA and training step against a PyTorch-made fixture", runVerify},
	"bench":    {"measure training, inference or serving speed (train|infer|data|serve)", runBench},
	"doctor":   {"report Go, LibTorch, CUDA, devices and the BLAS in use", runDoctor},
	"config":   {"config show: print the resolved config (defaults < file < env < --set)", runConfig},
	"init":     {"write a randomly initialised DistilBERT QA model directory (no download needed)", runInit},
}

// usageError marks a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loraqa <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'loraqa <command> -h' for a command's flags.")
}

func main() {
	tuneRuntime()
	os.Exit(mainExit())
}

// tuneRuntime re-executes the binary once with OMP_WAIT_POLICY=PASSIVE when
// it links Debian's LibTorch (OpenBLAS) and the user set no policy: libgomp
// reads it when it loads, before main runs, and LibTorch's OpenMP threads
// otherwise spin between parallel regions and starve OpenBLAS's threads
// (docs/benchmarks.md). PyPI's LibTorch does its BLAS on the same OpenMP
// threads (MKL), so GOMP's default policy stays. A program that imports
// package engine gets the policy only from its environment (engine.Tune
// warns when it is missing).
func tuneRuntime() {
	if _, set := os.LookupEnv("OMP_WAIT_POLICY"); set || torch.Source() != "debian" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), "OMP_WAIT_POLICY=PASSIVE")) // returns only on failure: go on as we are
}

func mainExit() (code int) {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			return 2
		}
		return 0
	}
	name := os.Args[1]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "loraqa: unknown command %q\n\n", name)
		usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			if le := torch.AsError(r); le != nil { // a LibTorch failure no command caught
				fmt.Fprintf(os.Stderr, "loraqa %s: error: %v\n", name, le)
				code = 1
				return
			}
			fmt.Fprintf(os.Stderr, "loraqa %s: internal error: %v\n", name, r)
			if os.Getenv("LORAQA_DEBUG") != "" {
				os.Stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(os.Stderr, "(set LORAQA_DEBUG=1 for a stack trace, and please report it)")
			}
			code = 3
		}
	}()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "loraqa %s: %v\n", name, err)
			return 2
		}
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "loraqa %s: error: %v\n", name, err)
		return 1
	}
	return 0
}
