package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// In-memory counterparts of Open and Write, and encoders, that only the tests
// (fuzzing, round trips, byte layouts) use.

// Parse validates an in-memory safetensors buffer. The File reads from
// data, which must not be modified while the File is in use.
func Parse(data []byte) (*File, error) {
	return newFile("<buffer>", bytes.NewReader(data), int64(len(data)))
}

// Encode writes tensors and metadata in safetensors format to w.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header, order, err := buildHeader("<buffer>", tensors, metadata)
	if err != nil {
		return err
	}
	return writeBody(w, header, order)
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

// NumElements is the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
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
