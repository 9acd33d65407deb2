package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// ManualSeed seeds LibTorch's default generators (CPU and every CUDA device), as
// torch.manual_seed does: the same seed gives bit-identical random tensors.
func ManualSeed(seed int64) { lib.LoraqaManualSeed(seed) }

// SetThreads sets LibTorch's intra-op thread count; n <= 0 leaves it unchanged.
func SetThreads(n int) {
	if n > 0 {
		lib.LoraqaSetNumThreads(n)
	}
}

// Threads is LibTorch's intra-op thread count.
func Threads() int { return lib.LoraqaGetNumThreads() }
