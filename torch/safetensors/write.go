package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// Tensor is a named tensor with its raw little-endian data.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Write writes tensors and metadata to path atomically (internal/atomicfile:
// a synced temporary file in the same directory, then a rename). An invalid
// tensor or a failed write leaves path as it was.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	header, order, err := buildHeader(path, tensors, metadata)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFunc(path, func(w io.Writer) error { return writeBody(w, header, order) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

func writeBody(w io.Writer, header []byte, order []Tensor) error {
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, t := range order {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// buildHeader validates tensors and returns the padded header and the
// tensors in data order: decreasing dtype (reference enum order), then name.
func buildHeader(path string, tensors []Tensor, metadata map[string]string) ([]byte, []Tensor, error) {
	order := make([]Tensor, len(tensors))
	copy(order, tensors)
	seen := map[string]bool{}
	for _, t := range order {
		if err := checkTensor(path, t); err != nil {
			return nil, nil, err
		}
		if seen[t.Name] {
			return nil, nil, newErr(path, t.Name, "duplicate tensor name")
		}
		seen[t.Name] = true
	}
	sort.Slice(order, func(i, j int) bool {
		ri, rj := order[i].DType.rank(), order[j].DType.rank()
		if ri != rj {
			return ri > rj
		}
		return order[i].Name < order[j].Name
	})
	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, newErr(path, metadataKey, "key or value of %q is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(&buf, k)
			buf.WriteByte(':')
			writeJSONString(&buf, metadata[k])
		}
		buf.WriteString("},")
	}
	var off int64
	for i, t := range order {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeJSONString(&buf, t.Name)
		buf.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatInt(d, 10))
		}
		end := off + int64(len(t.Data))
		fmt.Fprintf(&buf, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	if len(metadata) > 0 && len(order) == 0 {
		buf.Truncate(buf.Len() - 1) // drop the comma after the metadata
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	if buf.Len() > MaxHeaderSize {
		return nil, nil, newErr(path, "", "header of %d bytes exceeds the %d byte limit", buf.Len(), MaxHeaderSize)
	}
	return buf.Bytes(), order, nil
}

func checkTensor(path string, t Tensor) error {
	switch {
	case t.Name == metadataKey:
		return newErr(path, t.Name, "invalid tensor name")
	case !utf8.ValidString(t.Name):
		return newErr(path, t.Name, "name is not valid UTF-8")
	case !t.DType.Valid():
		return newErr(path, t.Name, "unknown dtype %q", t.DType)
	}
	n := uint64(t.DType.Size())
	for i, d := range t.Shape {
		if d < 0 {
			return newErr(path, t.Name, "shape[%d] = %d is negative", i, d)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return newErr(path, t.Name, "shape %v overflows the byte size", t.Shape)
		}
		n = lo
	}
	if uint64(len(t.Data)) != n {
		return newErr(path, t.Name, "%s shape %v needs %d bytes, data has %d", t.DType, t.Shape, n, len(t.Data))
	}
	return nil
}

// writeJSONString quotes s as serde_json does: only '"', '\\' and control
// characters are escaped.
func writeJSONString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\\':
			buf.WriteString(`\\`)
		case c == '\b':
			buf.WriteString(`\b`)
		case c == '\f':
			buf.WriteString(`\f`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}
