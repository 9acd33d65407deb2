package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// build assembles prefix + header + dataLen zero bytes.
func build(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

// withPrefix returns 8 bytes declaring n plus the rest.
func withPrefix(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func TestMalformedFiles(t *testing.T) {
	valid := build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8)
	cases := []struct {
		name string
		data []byte
		key  string // tensor key the error must name ("" = none)
		want string
	}{
		{"empty file", nil, "", "file is 0 bytes, too short"},
		{"truncated prefix", []byte{1, 2, 3, 4, 5}, "", "file is 5 bytes, too short"},
		{"header length beyond file", withPrefix(1000, "{}"), "", "header length 1000 exceeds the 2 bytes after the length prefix"},
		{"header claims gigabytes", withPrefix(5<<30, "{}"), "", "header length 5368709120 exceeds the 100000000 byte limit"},
		{"truncated data", valid[:len(valid)-3], "a", "data_offsets [0, 8] run past the 5-byte data buffer"},
		{"offsets past end", build(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`, 6), "a", "run past the 6-byte data buffer"},
		{"overlap", build(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 6), "b", `overlap tensor "a"`},
		{"gap", build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, 6), "b", "leave bytes 2..4 of the data buffer unused"},
		{"trailing data", build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 5), "", "data buffer has 5 bytes but the tensors cover only 2"},
		{"dtype x shape mismatch", build(`{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}}`, 12), "w", "F32 shape [2 3] needs 24 bytes but data_offsets [0, 12] hold 12"},
		{"unknown dtype", build(`{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), "w", `unknown dtype "F128"`},
		{"bad JSON", build(`{"w":{"dtype":"F32",`, 0), "", "header JSON"},
		{"not an object", build(`[1,2,3]`, 0), "", "header is not a JSON object"},
		{"metadata value not a string", build(`{"__metadata__":{"format":1}}`, 0), "__metadata__", `value of "format" is 1, not a string`},
		{"metadata not an object", build(`{"__metadata__":"pt"}`, 0), "__metadata__", "must be an object of strings"},
		{"negative dim", build(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 0), "w", "shape[0] = -1 is not a non-negative integer"},
		{"fractional dim", build(`{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`, 0), "w", "shape[0] = 1.5 is not"},
		{"shape overflow", build(`{"w":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, 0), "w", "overflows the byte size"},
		{"huge dim", build(`{"w":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}}`, 0), "w", "shape[0] = 99999999999999999999 is not"},
		{"three offsets", build(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1), "w", "data_offsets has 3 values, want 2"},
		{"end before begin", build(`{"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}`, 1), "w", "end before they begin"},
		{"missing dtype", build(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, 1), "w", "lacks dtype, shape or data_offsets"},
		{"unknown field", build(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}`, 1), "w", `unknown field "extra"`},
		{"entry not an object", build(`{"w":[1]}`, 0), "w", "entry must be an object"},
		{"duplicate key", build(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), "w", "duplicate key"},
		{"invalid UTF-8", build("{\"\xff\":1}", 0), "", "not valid UTF-8"},
		{"junk after object", build(`{} x`, 0), "", "data after the JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.ErrorContains(t, err, c.want)
			if c.key != "" {
				assert.ErrorContains(t, err, `tensor "`+c.key+`"`)
			}

			path := filepath.Join(t.TempDir(), "bad.safetensors")
			require.NoError(t, os.WriteFile(path, c.data, 0o644))
			_, err = Open(path)
			require.Error(t, err)
			assert.ErrorContains(t, err, "safetensors "+path+": ")
			assert.ErrorContains(t, err, c.want)
		})
	}
	_, err := Parse(valid)
	require.NoError(t, err, "the unmodified base case is valid")
}

func TestOpenMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.safetensors")
	_, err := Open(path)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, path)
	_, err = Open(t.TempDir())
	assert.ErrorContains(t, err, "is a directory")
}

func TestParseAcceptsEdgeCases(t *testing.T) {
	cases := []struct {
		name   string
		data   []byte
		tensor string
		shape  []int64
	}{
		{"null metadata", build(`{"__metadata__":null}`, 0), "", nil},
		{"zero-size tensor at the end", build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]}}`, 2), "z", []int64{0, 3}},
		{"scalar", build(`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, 8), "s", []int64{}},
		{"whitespace padding", build(`{"s":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}       `, 1), "s", []int64{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			require.NoError(t, err)
			if c.tensor == "" {
				return
			}
			info, ok := f.Info(c.tensor)
			require.True(t, ok)
			assert.Equal(t, c.shape, info.Shape)
			data, err := f.Bytes(c.tensor)
			require.NoError(t, err)
			assert.Len(t, data, int(info.End-info.Begin))
		})
	}
}
