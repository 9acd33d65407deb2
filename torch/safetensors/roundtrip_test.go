package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seq returns n bytes 1, 2, 3, ... so misplaced data is visible.
func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestRoundTripEveryDType(t *testing.T) {
	var tensors []Tensor
	for i, d := range dtypeOrder {
		shape := []int64{2, 3}
		tensors = append(tensors, Tensor{Name: "t_" + string(d), DType: d, Shape: shape, Data: seq(int(6*d.Size()), byte(i*16))})
	}
	tensors = append(tensors,
		Tensor{Name: "scalar", DType: F32, Shape: []int64{}, Data: Float32sToBytes([]float32{3.5})},
		Tensor{Name: "empty", DType: I64, Shape: []int64{0, 4}, Data: []byte{}},
	)
	meta := map[string]string{"format": "pt", "note": "quote \" and\nnewline"}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	require.NoError(t, Write(path, tensors, meta))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, meta, f.Metadata)
	require.Len(t, f.Tensors, len(tensors))
	for _, want := range tensors {
		t.Run(want.Name, func(t *testing.T) {
			got, err := f.Tensor(want.Name)
			require.NoError(t, err)
			assert.Equal(t, want.DType, got.DType)
			assert.Equal(t, want.Shape, got.Shape)
			assert.Equal(t, want.Data, got.Data)
		})
	}
	for i := 1; i < len(f.Tensors); i++ {
		assert.Less(t, f.Tensors[i-1].Name, f.Tensors[i].Name, "Tensors sorted by name")
	}

	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, tensors, meta))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, onDisk, buf.Bytes(), "Encode and Write produce the same bytes")
}

func TestWriteLayoutMatchesReference(t *testing.T) {
	// Hand-built expectation in the reference library's layout: wider dtypes
	// first (I64 before F32 before U8), then by name; compact JSON; header
	// padded with spaces to a multiple of 8.
	tensors := []Tensor{
		{Name: "b", DType: U8, Shape: []int64{3}, Data: []byte{7, 8, 9}},
		{Name: "a", DType: F32, Shape: []int64{2}, Data: Float32sToBytes([]float32{1, 2})},
		{Name: "z", DType: I64, Shape: []int64{1}, Data: seq(8, 1)},
	}
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, tensors, map[string]string{"format": "pt"}))
	header := `{"__metadata__":{"format":"pt"},` +
		`"z":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},` +
		`"b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	want = append(want, header...)
	want = append(want, seq(8, 1)...)
	want = append(want, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)
	want = append(want, 7, 8, 9)
	assert.Equal(t, string(want), buf.String())
}

func TestWriteEmptyAndMetadataOnly(t *testing.T) {
	cases := []struct {
		name   string
		meta   map[string]string
		header string
	}{
		{"nothing", nil, "{}      "},
		{"metadata only", map[string]string{"k": "v"}, `{"__metadata__":{"k":"v"}}      `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Encode(&buf, nil, c.meta))
			assert.Equal(t, c.header, buf.String()[8:])
			f, err := Parse(buf.Bytes())
			require.NoError(t, err)
			assert.Empty(t, f.Tensors)
		})
	}
}

func TestFloat32sConvertsFloatDTypes(t *testing.T) {
	vals := []float32{0, 1, -2.5, 0.1, 65504, 1e-3}
	var tensors []Tensor
	for _, d := range []DType{F32, F16, BF16, F64} {
		data, err := EncodeFloat32s(d, vals)
		require.NoError(t, err)
		tensors = append(tensors, Tensor{Name: string(d), DType: d, Shape: []int64{2, 3}, Data: data})
	}
	tensors = append(tensors, Tensor{Name: "ints", DType: I32, Shape: []int64{1}, Data: []byte{1, 0, 0, 0}})
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, tensors, nil))
	f, err := Parse(buf.Bytes())
	require.NoError(t, err)

	cases := []struct {
		dtype DType
		want  []float32
	}{
		{F32, vals},
		{F64, vals},
		// Nearest half values: 0.1 -> 0x2E66, 1e-3 -> 0x1419.
		{F16, []float32{0, 1, -2.5, Float16ToFloat32(0x2E66), 65504, Float16ToFloat32(0x1419)}},
		// Nearest bfloat16 values: 0.1 -> 0x3DCD, 65504 -> 0x4780 (65536), 1e-3 -> 0x3A83.
		{BF16, []float32{0, 1, -2.5, BFloat16ToFloat32(0x3DCD), 65536, BFloat16ToFloat32(0x3A83)}},
	}
	for _, c := range cases {
		got, shape, err := f.Float32s(string(c.dtype))
		require.NoError(t, err, c.dtype)
		assert.Equal(t, []int64{2, 3}, shape)
		assert.Equal(t, c.want, got, c.dtype)
	}
	_, _, err = f.Float32s("ints")
	assert.ErrorContains(t, err, `tensor "ints": dtype I32 is not a float type`)
	_, err = f.Bytes("nope")
	assert.ErrorContains(t, err, `no tensor "nope"`)
}

func TestWriteRejectsBadTensors(t *testing.T) {
	cases := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"size mismatch", []Tensor{{Name: "w", DType: F32, Shape: []int64{2}, Data: make([]byte, 7)}}, `tensor "w": F32 shape [2] needs 8 bytes, data has 7`},
		{"unknown dtype", []Tensor{{Name: "w", DType: "F128", Shape: []int64{1}, Data: make([]byte, 16)}}, `tensor "w": unknown dtype "F128"`},
		{"negative dim", []Tensor{{Name: "w", DType: U8, Shape: []int64{-1}}}, `tensor "w": shape[0] = -1 is negative`},
		{"overflow", []Tensor{{Name: "w", DType: F64, Shape: []int64{1 << 62, 4}}}, `tensor "w": shape [4611686018427387904 4] overflows`},
		{"duplicate", []Tensor{{Name: "w", DType: U8, Shape: []int64{1}, Data: []byte{1}}, {Name: "w", DType: U8, Shape: []int64{1}, Data: []byte{2}}}, `tensor "w": duplicate tensor name`},
		{"reserved name", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int64{0}}}, `invalid tensor name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			err := Write(path, c.tensors, nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.ErrorContains(t, err, path)
			assert.ErrorContains(t, err, c.want)
			entries, _ := os.ReadDir(filepath.Dir(path))
			assert.Empty(t, entries, "no file or temp file left behind")
		})
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, Write(path, []Tensor{{Name: "x", DType: U8, Shape: []int64{1}, Data: []byte{5}}}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := f.Bytes("x")
	require.NoError(t, err)
	assert.Equal(t, []byte{5}, b)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "temp file renamed away")
}

// TestWriteFailureKeepsTarget: when the final rename fails (path is a
// non-empty directory), the write is refused, nothing is left behind and the
// target is untouched.
func TestWriteFailureKeepsTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	require.NoError(t, os.MkdirAll(filepath.Join(path, "inside"), 0o755))
	err := Write(path, []Tensor{{Name: "x", DType: U8, Shape: []int64{1}, Data: []byte{5}}}, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, path)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
	assert.True(t, entries[0].IsDir())
	_, err = os.Stat(filepath.Join(path, "inside"))
	assert.NoError(t, err)
}
