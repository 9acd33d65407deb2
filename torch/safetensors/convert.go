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

// BFloat16ToFloat32 converts bfloat16 bits to float32 (exactly).
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
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
