package engine

import (
	"os"

	"github.com/loraqa/loraqa/torch"
)

// Tune checks the runtime settings loraqa's command line uses; Load does
// not call it (serve and the CLI do). logf (nil: none) hears a notice when
// the process lacks a setting that cannot be applied inside it. Tune sets
// nothing process-wide: a server shrinks back between bursts because its
// model worker hands freed memory back to the OS when idle
// (Options.ReleaseIdle), not through malloc settings (a 1 MiB mmap
// threshold, what serve set before, doubled the latency of a 1×384 query:
// docs/benchmarks.md).
//
// What cannot be done in-process: with Debian's LibTorch (OpenBLAS; torch.Source()
// "debian"), LibTorch's OpenMP threads must not spin between parallel
// regions or they starve OpenBLAS's threads (docs/benchmarks.md). libgomp
// reads OMP_WAIT_POLICY once, when it starts, before any Go code runs, so a
// program that uses Debian's LibTorch must be started with
// OMP_WAIT_POLICY=PASSIVE in its environment (the loraqa command re-executes
// itself with it). PyPI's LibTorch does its BLAS on the same OpenMP threads
// (MKL) and needs nothing.
//
// The LibTorch thread count is per OS thread: Options.Threads sets the
// model worker's.
func Tune(logf func(format string, a ...any)) {
	if needsWaitPolicy() && logf != nil {
		logf("notice: Debian's LibTorch runs much slower unless the process starts with OMP_WAIT_POLICY=PASSIVE in its environment (see engine.Tune)")
	}
}

// needsWaitPolicy reports whether this process should have been started
// with OMP_WAIT_POLICY=PASSIVE and was not (Debian's LibTorch; see Tune).
func needsWaitPolicy() bool {
	_, set := os.LookupEnv("OMP_WAIT_POLICY")
	return !set && torch.Source() == "debian"
}
