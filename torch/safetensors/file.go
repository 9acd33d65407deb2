package safetensors

import (
	"fmt"
	"io"
	"os"
	"slices"
)

// File is an opened safetensors file. Tensors is sorted by name.
type File struct {
	Path     string
	Metadata map[string]string
	Tensors  []TensorInfo

	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	index     map[string]int
}

// Open reads and validates the header of the file at path. Tensor data is
// read on demand; call Close when done.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("safetensors %s: is a directory", path)
	}
	sf, err := newFile(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.closer = f
	return sf, nil
}

func newFile(path string, r io.ReaderAt, size int64) (*File, error) {
	var prefix [8]byte
	if size >= 8 {
		if _, err := r.ReadAt(prefix[:], 0); err != nil {
			return nil, fmt.Errorf("safetensors %s: reading header length: %w", path, err)
		}
	}
	n, err := headerLen(path, prefix[:], size)
	if err != nil {
		return nil, err
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", path, err)
	}
	meta, infos, err := parseHeader(path, header, size-8-n)
	if err != nil {
		return nil, err
	}
	f := &File{Path: path, Metadata: meta, Tensors: infos, r: r, dataStart: 8 + n, index: map[string]int{}}
	for i, t := range infos {
		f.index[t.Name] = i
	}
	return f, nil
}

// Close releases the underlying file. It is a no-op for parsed buffers.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", f.Path, err)
	}
	return nil
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		names[i] = t.Name
	}
	return names
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Bytes returns a fresh copy of the raw little-endian data of a tensor.
func (f *File) Bytes(name string) ([]byte, error) {
	info, ok := f.Info(name)
	if !ok {
		return nil, f.missing(name)
	}
	buf := make([]byte, info.End-info.Begin)
	if len(buf) == 0 {
		return buf, nil // a zero-length ReadAt at the end of data may report EOF
	}
	if _, err := f.r.ReadAt(buf, f.dataStart+info.Begin); err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: reading data: %w", f.Path, name, err)
	}
	return buf, nil
}

// Tensor returns the named tensor with a copy of its data.
func (f *File) Tensor(name string) (Tensor, error) {
	data, err := f.Bytes(name)
	if err != nil {
		return Tensor{}, err
	}
	info, _ := f.Info(name)
	return Tensor{Name: name, DType: info.DType, Shape: slices.Clone(info.Shape), Data: data}, nil
}

// Float32s returns a float tensor (F32, F16, BF16 or F64) converted to
// float32, with its shape.
func (f *File) Float32s(name string) ([]float32, []int64, error) {
	info, ok := f.Info(name)
	if !ok {
		return nil, nil, f.missing(name)
	}
	if !info.DType.IsFloat() {
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q: dtype %s is not a float type", f.Path, name, info.DType)
	}
	data, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := DecodeFloat32s(info.DType, data)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.Path, name, err)
	}
	return v, slices.Clone(info.Shape), nil
}

func (f *File) missing(name string) error {
	return fmt.Errorf("safetensors %s: no tensor %q among its %d tensors", f.Path, name, len(f.Tensors))
}
