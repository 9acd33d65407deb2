package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header accepted, as in the reference library.
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file. Begin and End are byte offsets
// relative to the start of the data buffer.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	Begin int64
	End   int64
}

// headerLen checks the 8-byte prefix against the file size and returns N.
func headerLen(path string, prefix []byte, fileSize int64) (int64, error) {
	if fileSize < 8 {
		return 0, newErr(path, "", "file is %d bytes, too short for the 8-byte header length", fileSize)
	}
	n := binary.LittleEndian.Uint64(prefix)
	if n > MaxHeaderSize {
		return 0, newErr(path, "", "header length %d exceeds the %d byte limit", n, MaxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return 0, newErr(path, "", "header length %d exceeds the %d bytes after the length prefix", n, fileSize-8)
	}
	if n < 2 {
		return 0, newErr(path, "", "header length %d is too short for a JSON object", n)
	}
	return int64(n), nil
}

// rawEntry is one tensor entry as written in the header.
type rawEntry struct {
	DType       *string       `json:"dtype"`
	Shape       []json.Number `json:"shape"`
	DataOffsets []json.Number `json:"data_offsets"`
}

// parseHeader validates header against a data buffer of dataLen bytes and
// returns the metadata and the tensors sorted by name.
func parseHeader(path string, header []byte, dataLen int64) (map[string]string, []TensorInfo, error) {
	if !utf8.Valid(header) {
		return nil, nil, newErr(path, "", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, newErr(path, "", "header is not a JSON object")
	}
	var meta map[string]string
	var infos []TensorInfo
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, newErr(path, "", "header JSON: %v", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, nil, newErr(path, key, "duplicate key in header")
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, newErr(path, key, "header JSON: %v", err)
		}
		if key == metadataKey {
			if meta, err = parseMetadata(path, raw); err != nil {
				return nil, nil, err
			}
			continue
		}
		info, err := parseEntry(path, key, raw, dataLen)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, info)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, newErr(path, "", "header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, newErr(path, "", "header has data after the JSON object")
	}
	if err := checkCoverage(path, infos, dataLen); err != nil {
		return nil, nil, err
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return meta, infos, nil
}

func parseMetadata(path string, raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, newErr(path, metadataKey, "must be an object of strings")
	}
	meta := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || string(v) == "null" {
			return nil, newErr(path, metadataKey, "value of %q is %s, not a string", k, truncate(string(v)))
		}
		meta[k] = s
	}
	return meta, nil
}

func parseEntry(path, key string, raw json.RawMessage, dataLen int64) (TensorInfo, error) {
	var e rawEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || string(raw) == "null" {
		msg := "entry must be an object with dtype, shape and data_offsets"
		if err != nil {
			msg += ": " + err.Error()
		}
		return TensorInfo{}, newErr(path, key, "%s", msg)
	}
	if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
		return TensorInfo{}, newErr(path, key, "entry lacks dtype, shape or data_offsets")
	}
	info := TensorInfo{Name: key, DType: DType(*e.DType)}
	size := info.DType.Size()
	if size == 0 {
		return TensorInfo{}, newErr(path, key, "unknown dtype %q", *e.DType)
	}
	info.Shape = make([]int64, len(e.Shape))
	bytesWanted := uint64(size)
	for i, n := range e.Shape {
		d, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || d < 0 {
			return TensorInfo{}, newErr(path, key, "shape[%d] = %s is not a non-negative integer", i, truncate(n.String()))
		}
		info.Shape[i] = d
		hi, lo := bits.Mul64(bytesWanted, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return TensorInfo{}, newErr(path, key, "shape %v overflows the byte size", e.Shape)
		}
		bytesWanted = lo
	}
	if len(e.DataOffsets) != 2 {
		return TensorInfo{}, newErr(path, key, "data_offsets has %d values, want 2", len(e.DataOffsets))
	}
	var off [2]int64
	for i, n := range e.DataOffsets {
		v, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || v < 0 {
			return TensorInfo{}, newErr(path, key, "data_offsets[%d] = %s is not a non-negative integer", i, truncate(n.String()))
		}
		off[i] = v
	}
	info.Begin, info.End = off[0], off[1]
	if info.Begin > info.End {
		return TensorInfo{}, newErr(path, key, "data_offsets [%d, %d] end before they begin", info.Begin, info.End)
	}
	if info.End > dataLen {
		return TensorInfo{}, newErr(path, key, "data_offsets [%d, %d] run past the %d-byte data buffer", info.Begin, info.End, dataLen)
	}
	if uint64(info.End-info.Begin) != bytesWanted {
		return TensorInfo{}, newErr(path, key, "%s shape %v needs %d bytes but data_offsets [%d, %d] hold %d",
			info.DType, info.Shape, bytesWanted, info.Begin, info.End, info.End-info.Begin)
	}
	return info, nil
}

// checkCoverage requires the tensors to tile [0, dataLen) exactly.
func checkCoverage(path string, infos []TensorInfo, dataLen int64) error {
	order := make([]TensorInfo, len(infos))
	copy(order, infos)
	sort.Slice(order, func(i, j int) bool {
		if order[i].Begin != order[j].Begin {
			return order[i].Begin < order[j].Begin
		}
		return order[i].End < order[j].End
	})
	var pos int64
	prev := ""
	for _, t := range order {
		switch {
		case t.Begin < pos:
			return newErr(path, t.Name, "data_offsets [%d, %d] overlap tensor %q", t.Begin, t.End, prev)
		case t.Begin > pos:
			return newErr(path, t.Name, "data_offsets [%d, %d] leave bytes %d..%d of the data buffer unused", t.Begin, t.End, pos, t.Begin)
		}
		if t.End > t.Begin {
			pos, prev = t.End, t.Name
		}
	}
	if pos != dataLen {
		return newErr(path, "", "data buffer has %d bytes but the tensors cover only %d", dataLen, pos)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
