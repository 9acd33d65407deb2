package engine

import (
	"os"
	"sync"

	"github.com/loraqa/loraqa/torch"
)

// servingMmapThreshold is the malloc mmap threshold Tune sets for serving:
// 1 MiB.
const servingMmapThreshold = 1 << 20

var tuneServing sync.Once

// Tune applies the runtime settings loraqa's command line uses, as far as
// they can be applied inside a running process; Load does not call it (the
// serve and CLI do). Calling it again does nothing more. It never overrides
// what the environment sets. logf (nil: none) hears a notice when the
// process lacks a setting Tune cannot apply.
//
// With serving (a long-running server), glibc malloc's mmap threshold is set
// to 1 MiB (what MALLOC_MMAP_THRESHOLD_=1048576 does), unless
// MALLOC_MMAP_THRESHOLD_ is set: activations then go back to the OS when
// freed, which keeps the RSS of a long-running process flat, at some cost in
// latency (docs/benchmarks.md). Batch work (predict, eval) leaves the default.
//
// What cannot be done here: with Debian's LibTorch (OpenBLAS; torch.Source()
// "debian"), LibTorch's OpenMP threads must not spin between parallel
// regions or they starve OpenBLAS's threads (docs/benchmarks.md). libgomp reads OMP_WAIT_POLICY once, when it starts, before
// any Go code runs, so a program that uses Debian's LibTorch must be started
// with OMP_WAIT_POLICY=PASSIVE in its environment (the loraqa command
// re-executes itself with it). PyPI's LibTorch does its BLAS on the same
// OpenMP threads (MKL) and needs nothing.
//
// The LibTorch thread count is per OS thread: Options.Threads sets the
// model worker's.
func Tune(serving bool, logf func(format string, a ...any)) {
	if needsWaitPolicy() && logf != nil {
		logf("notice: Debian's LibTorch runs much slower unless the process starts with OMP_WAIT_POLICY=PASSIVE in its environment (see engine.Tune)")
	}
	if serving {
		tuneServing.Do(func() {
			if _, set := os.LookupEnv("MALLOC_MMAP_THRESHOLD_"); !set {
				torch.SetMmapThreshold(servingMmapThreshold)
			}
		})
	}
}

// needsWaitPolicy reports whether this process should have been started
// with OMP_WAIT_POLICY=PASSIVE and was not (Debian's LibTorch; see Tune).
func needsWaitPolicy() bool {
	_, set := os.LookupEnv("OMP_WAIT_POLICY")
	return !set && torch.Source() == "debian"
}
