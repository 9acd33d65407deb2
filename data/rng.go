package data

import "math/bits"

// rng is a SplitMix64 generator. It is written out here, rather than taken
// from math/rand, so that splits and shuffles stay the same for a seed
// whatever the Go version.
type rng struct{ state uint64 }

func newRNG(seed uint64, stream uint64) *rng {
	r := &rng{state: seed}
	r.state ^= stream * 0xd1b54a32d192ed03
	return r
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n) (Lemire's method), n > 0.
func (r *rng) intn(n int) int {
	bound := uint64(n)
	hi, lo := bits.Mul64(r.next(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(r.next(), bound)
		}
	}
	return int(hi)
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 {
	return float64(r.next()>>11) / (1 << 53)
}

// shuffle permutes idx in place (Fisher–Yates).
func (r *rng) shuffle(idx []int) {
	for i := len(idx) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		idx[i], idx[j] = idx[j], idx[i]
	}
}

// hashUnit maps (seed, key, n) to a fixed float64 in [0, 1).
func hashUnit(seed uint64, key string, n int) float64 {
	h := uint64(14695981039346656037) // FNV-1a
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	r := newRNG(seed^h, uint64(n)+1)
	return r.float()
}
