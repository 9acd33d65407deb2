package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float16ToFloat32 converts IEEE 754 half-precision bits to float32
// (exactly; every half value is representable).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	case 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToFloat16 converts f to half-precision bits, rounding to nearest
// with ties to even; values beyond the half range become infinities and
// NaNs stay (quiet) NaNs.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // half subnormal (or zero): value / 2^-24
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		return sign | uint16(roundShift(m, shift))
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to infinity: both correct
	}
	return sign | uint16(r)
}

// roundShift returns m >> shift rounded to nearest, ties to even.
func roundShift(m, shift uint32) uint32 {
	r := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && r&1 == 1) {
		r++
	}
	return r
}

// BFloat16ToFloat32 converts bfloat16 bits to float32 (exactly).
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBFloat16 converts f to bfloat16 bits, rounding to nearest with
// ties to even; NaNs stay (quiet) NaNs.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Float32sToBytes encodes v as little-endian F32 data.
func Float32sToBytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// BytesToFloat32s decodes little-endian F32 data.
func BytesToFloat32s(b []byte) ([]float32, error) {
	return DecodeFloat32s(F32, b)
}

// EncodeFloat32s encodes v as little-endian data of a float dtype (F32,
// F16, BF16 or F64), rounding to nearest even where the dtype is narrower.
func EncodeFloat32s(d DType, v []float32) ([]byte, error) {
	if !d.IsFloat() {
		return nil, fmt.Errorf("%w: dtype %q is not a float type", ErrInvalid, d)
	}
	out := make([]byte, int(d.Size())*len(v))
	for i, x := range v {
		switch d {
		case F32:
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		case F64:
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(float64(x)))
		case F16:
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToFloat16(x))
		case BF16:
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToBFloat16(x))
		}
	}
	return out, nil
}

// DecodeFloat32s decodes little-endian data of a float dtype to float32
// (F64 is rounded to nearest).
func DecodeFloat32s(d DType, b []byte) ([]float32, error) {
	if !d.IsFloat() {
		return nil, fmt.Errorf("%w: dtype %q is not a float type", ErrInvalid, d)
	}
	size := int(d.Size())
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %s values", ErrInvalid, len(b), d)
	}
	out := make([]float32, len(b)/size)
	for i := range out {
		switch d {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		case F64:
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		case F16:
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		case BF16:
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	}
	return out, nil
}
