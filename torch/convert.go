package torch

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Float32Bytes is the little-endian byte form of v.
func Float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// FromFloat32 makes a float32 tensor of the given shape on dev, converted to dtype.
func FromFloat32(v []float32, shape []int64, dtype gotch.DType, dev gotch.Device) (*ts.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != int64(len(v)) {
		return nil, fmt.Errorf("%d values do not fill shape %v", len(v), shape)
	}
	var t *ts.Tensor
	var err error
	if len(v) == 0 {
		t = ts.MustZeros(shape, gotch.Float, gotch.CPU)
	} else {
		t, err = ts.OfDataSize(Float32Bytes(v), shape, gotch.Float)
		if err != nil {
			return nil, err
		}
	}
	if dtype != gotch.Float {
		t = t.MustTotype(dtype, true)
	}
	if dev != gotch.CPU {
		countSync() // a copy from pageable memory
		t = t.MustTo(dev, true)
	}
	return t, nil
}

// FromInt64 makes an int64 tensor of the given shape on dev.
func FromInt64(v []int64, shape []int64, dev gotch.Device) *ts.Tensor {
	t := ts.MustOfSlice(v).MustView(shape, true)
	if dev != gotch.CPU {
		countSync() // a copy from pageable memory
		t = t.MustTo(dev, true)
	}
	return t
}

// UploadInt64 puts parts (each of the length its shape says) on dev in one
// copy and returns a view of it for each: on a CUDA device, one page-locked
// host buffer and one asynchronous copy (no host sync); on the CPU, one
// tensor. The caller drops the views.
func UploadInt64(parts [][]int64, shapes [][]int64, dev gotch.Device) []*ts.Tensor {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var flat *ts.Tensor
	if dev.IsCuda() {
		host := PinnedInt64(n)
		dst := unsafe.Slice((*int64)(host.MustDataPtr()), n)
		off := 0
		for _, p := range parts {
			off += copy(dst[off:], p)
		}
		flat = ts.MustEmpty([]int64{int64(n)}, gotch.Int64, dev)
		CopyAsync(flat, host)
		host.MustDrop() // LibTorch's pinned allocator keeps the block until the copy is done
	} else {
		all := make([]int64, 0, n)
		for _, p := range parts {
			all = append(all, p...)
		}
		flat = ts.MustOfSlice(all)
	}
	out := make([]*ts.Tensor, len(parts))
	off := int64(0)
	for i, p := range parts {
		out[i] = flat.MustNarrow(0, off, int64(len(p)), false).MustView(shapes[i], true)
		off += int64(len(p))
	}
	flat.MustDrop()
	return out
}

// ToFloat32 copies t (any float dtype, any device) into a new []float32.
func ToFloat32(t *ts.Tensor) []float32 {
	countSync()
	c := t.MustDetach(false).MustTotype(gotch.Float, true).MustTo(gotch.CPU, true).MustContiguous(true)
	defer c.MustDrop()
	n := int(c.Numel())
	v := make([]float32, n)
	if n > 0 {
		c.MustCopyData(v, uint(n))
	}
	return v
}

// CopyFromFloat32 copies host values of the given shape into dst (any float
// dtype, any device) without recording a gradient.
func CopyFromFloat32(dst *ts.Tensor, v []float32, shape []int64) error {
	src, err := FromFloat32(v, shape, dst.DType(), dst.MustDevice())
	if err != nil {
		return err
	}
	NoGrad(func() { dst.Copy_(src) })
	src.MustDrop()
	return nil
}
