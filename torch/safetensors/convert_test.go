package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conversionCase is a float32 and the 16 bits a conversion must give for it.
type conversionCase struct {
	name string
	f    float32
	bits uint16
}

// checkConversion runs convert on each case's float32, a subtest a case.
func checkConversion(t *testing.T, convert func(float32) uint16, cases []conversionCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.bits, convert(c.f), "%#04x", convert(c.f))
		})
	}
}

func TestFloat16Table(t *testing.T) {
	checkConversion(t, Float32ToFloat16, []conversionCase{
		{"one", 1, 0x3C00},
		{"minus two", -2, 0xC000},
		{"max half", 65504, 0x7BFF},
		{"rounds up to inf (tie to even)", 65520, 0x7C00},
		{"just below the inf tie", 65519.996, 0x7BFF},
		{"smallest normal", 1.0 / (1 << 14), 0x0400},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"half the smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000},
		{"1.5 subnormal ulps ties to even 2", 3.0 / (1 << 25), 0x0002},
		{"1 + half ulp ties to even 1", 1 + 1.0/(1<<11), 0x3C00},
		{"1 + 1.5 ulp ties to even", 1 + 3.0/(1<<11), 0x3C02},
		{"just above tie rounds up", math.Float32frombits(0x3F801001), 0x3C01},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"inf", float32(math.Inf(1)), 0x7C00},
		{"-inf", float32(math.Inf(-1)), 0xFC00},
		{"tiny underflows to signed zero", -1e-30, 0x8000},
		{"huge overflows", 1e30, 0x7C00},
	})
	assert.True(t, math.IsNaN(float64(Float16ToFloat32(Float32ToFloat16(float32(math.NaN()))))))
	assert.Equal(t, float32(65504), Float16ToFloat32(0x7BFF))
	assert.Equal(t, float32(-5.9604645e-08), Float16ToFloat32(0x8001))
}

func TestFloat16RoundTripsEveryValue(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		if h&0x7C00 == 0x7C00 && h&0x3FF != 0 {
			require.True(t, math.IsNaN(float64(f)), "%#04x", h)
			require.True(t, math.IsNaN(float64(Float16ToFloat32(Float32ToFloat16(f)))))
			continue
		}
		require.Equal(t, uint16(h), Float32ToFloat16(f), "%#04x -> %g", h, f)
	}
}

// nearestHalf is a slow reference: the nearest finite half by search over
// all positive halves, ties to even bits. halves ends with 65536 standing
// for infinity (bits 0x7C00), so overflow follows the same rounding rule.
func nearestHalf(halves []float64, f float32) uint16 {
	x := math.Abs(float64(f))
	sign := uint16(0)
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	if x > 65536 {
		return sign | 0x7C00
	}
	i := sort.SearchFloat64s(halves, x) // halves[i] >= x
	if i == 0 || halves[i] == x {
		return sign | uint16(i)
	}
	lo, hi := halves[i-1], halves[i]
	switch {
	case x-lo < hi-x:
		return sign | uint16(i-1)
	case x-lo > hi-x:
		return sign | uint16(i)
	case (i-1)%2 == 0:
		return sign | uint16(i-1)
	}
	return sign | uint16(i)
}

func TestFloat32ToFloat16MatchesReference(t *testing.T) {
	halves := make([]float64, 0x7C01)
	for h := range 0x7C00 {
		halves[h] = float64(Float16ToFloat32(uint16(h)))
	}
	halves[0x7C00] = 65536
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Exponents around the half range, random mantissas.
		exp := uint32(127-27+rng.IntN(46)) << 23
		f := math.Float32frombits(exp | rng.Uint32()&0x807FFFFF)
		require.Equal(t, nearestHalf(halves, f), Float32ToFloat16(f), "%g (%#08x)", f, math.Float32bits(f))
	}
}

func TestBFloat16(t *testing.T) {
	checkConversion(t, Float32ToBFloat16, []conversionCase{
		{"one", 1, 0x3F80},
		{"pi truncates", math.Float32frombits(0x40490FDB), 0x4049},
		{"tie to even stays", math.Float32frombits(0x3F808000), 0x3F80},
		{"tie to even rounds up", math.Float32frombits(0x3F818000), 0x3F82},
		{"above tie", math.Float32frombits(0x3F808001), 0x3F81},
		{"max float32 overflows to inf", math.MaxFloat32, 0x7F80},
		{"-inf", float32(math.Inf(-1)), 0xFF80},
		{"smallest subnormal rounds to zero", math.Float32frombits(1), 0x0000},
	})
	nan := Float32ToBFloat16(math.Float32frombits(0x7F800001)) // payload only in low bits
	assert.True(t, math.IsNaN(float64(BFloat16ToFloat32(nan))), "NaN stays NaN, not inf")
	for b := 0; b < 1<<16; b++ {
		f := BFloat16ToFloat32(uint16(b))
		if !math.IsNaN(float64(f)) {
			require.Equal(t, uint16(b), Float32ToBFloat16(f))
		}
	}
}

func TestBytesToFloat32s(t *testing.T) {
	v := []float32{1, -0.5, float32(math.Inf(1))}
	got, err := BytesToFloat32s(Float32sToBytes(v))
	require.NoError(t, err)
	assert.Equal(t, v, got)
	assert.Equal(t, []byte{0, 0, 0x80, 0x3F}, Float32sToBytes([]float32{1}))
	_, err = BytesToFloat32s([]byte{1, 2, 3})
	assert.ErrorContains(t, err, "3 bytes is not a whole number of F32 values")
	_, err = EncodeFloat32s(I32, v)
	assert.ErrorIs(t, err, ErrInvalid)
}
