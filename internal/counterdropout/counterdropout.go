// Package counterdropout is a deterministic dropout for tests that compare a
// train-mode forward mask for mask with another implementation (HF + PEFT in
// scripts/ref/peft_check.py), set with torch.SetDropout: the masks come from
// a hash of (seed, call, element), not from a random generator.
package counterdropout

import (
	"math"
	"sync"

	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// CounterDropout is a deterministic dropout that another implementation can
// reproduce without sharing a random generator: its k-th call (k = 0, 1, …)
// keeps element i of x (i counts x's elements in row-major order of its shape)
// when CounterUniform(seed, k, i) >= p, and multiplies x by a float32 mask of
// 0 and float32(1/(1-p)), as PyTorch's dropout does. scripts/ref/peft_check.py
// patches torch.nn.functional.dropout with the same function.
type CounterDropout struct {
	Seed  uint64
	mu    sync.Mutex
	calls uint64
}

// Func is the dropout to pass to torch.SetDropout.
func (c *CounterDropout) Func() torch.DropoutFunc {
	return func(x *ts.Tensor, p float64) *ts.Tensor {
		c.mu.Lock()
		k := c.calls
		c.calls++
		c.mu.Unlock()
		mask := CounterMask(c.Seed, k, int(x.Numel()), p)
		m, err := torch.FromFloat32(mask, x.MustSize(), x.DType(), x.MustDevice())
		if err != nil {
			panic(err)
		}
		defer m.MustDrop()
		return x.MustMul(m, false)
	}
}

// Calls is how many times the dropout ran.
func (c *CounterDropout) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.calls)
}

// CounterMask is the mask of CounterDropout's k-th call on n elements.
func CounterMask(seed, k uint64, n int, p float64) []float32 {
	scale := float32(1 / (1 - p))
	mask := make([]float32, n)
	for i := range mask {
		if CounterUniform(seed, k, uint64(i)) >= p {
			mask[i] = scale
		}
	}
	return mask
}

// CounterUniform is a uniform number in [0, 1) from (seed, call, index): the
// splitmix64 finaliser of seed·φ + call·c + index + φ (wrapping uint64
// arithmetic), its top 53 bits scaled by 2⁻⁵³.
func CounterUniform(seed, call, index uint64) float64 {
	const phi, c = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03
	z := seed*phi + call*c + index + phi
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float64(z>>11) * math.Ldexp(1, -53)
}
