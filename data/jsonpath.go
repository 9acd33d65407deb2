package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jval is a decoded JSON value with its path ($.data[0].context), so that
// errors can say where in the document a value is wrong.
type jval struct {
	v       any
	path    string
	missing bool
}

func (j jval) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", j.path, fmt.Sprintf(format, args...))
}

func (j jval) object() (map[string]any, error) {
	if j.missing {
		return nil, j.errorf("missing")
	}
	m, ok := j.v.(map[string]any)
	if !ok {
		return nil, j.errorf("want an object, got %s", jsonKind(j.v))
	}
	return m, nil
}

// get returns the member key of an object value (missing when absent).
func (j jval) get(key string) jval {
	m, _ := j.v.(map[string]any)
	v, ok := m[key]
	return jval{v: v, path: j.path + "." + key, missing: !ok}
}

func (j jval) array() ([]jval, error) {
	if j.missing {
		return nil, j.errorf("missing")
	}
	a, ok := j.v.([]any)
	if !ok {
		return nil, j.errorf("want an array, got %s", jsonKind(j.v))
	}
	out := make([]jval, len(a))
	for i, v := range a {
		out[i] = jval{v: v, path: j.path + "[" + strconv.Itoa(i) + "]"}
	}
	return out, nil
}

// eachObject calls fn with each item of the array j in turn, after checking
// that the item is an object; it stops at the first error.
func (j jval) eachObject(fn func(item jval) error) error {
	items, err := j.array()
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, err := it.object(); err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}

func (j jval) str() (string, error) {
	if j.missing {
		return "", j.errorf("missing")
	}
	s, ok := j.v.(string)
	if !ok {
		return "", j.errorf("want a string, got %s", jsonKind(j.v))
	}
	return s, nil
}

// text accepts a string, or a number written as it appears in the file.
func (j jval) text() (string, error) {
	if n, ok := j.v.(json.Number); ok {
		return n.String(), nil
	}
	return j.str()
}

func (j jval) integer() (int, error) {
	if j.missing {
		return 0, j.errorf("missing")
	}
	n, ok := j.v.(json.Number)
	if !ok {
		return 0, j.errorf("want an integer, got %s", jsonKind(j.v))
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		return 0, j.errorf("want an integer, got %s", n)
	}
	return i, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// decodeJSON decodes one JSON document that starts on line baseLine of its
// file. Syntax errors read "LINE:COL: invalid JSON: ..." so that a caller can
// put the file name in front; data after the document is an error.
func decodeJSON(data []byte, baseLine int) (jval, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return jval{}, jsonSyntaxError(data, baseLine, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := lineCol(data, int(dec.InputOffset()))
		return jval{}, fmt.Errorf("%d:%d: unexpected data after the JSON value", baseLine+line-1, col)
	}
	return jval{v: v, path: "$"}, nil
}

func jsonSyntaxError(data []byte, baseLine int, dec *json.Decoder, err error) error {
	off := int(dec.InputOffset())
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		off = int(se.Offset) - 1 // Offset counts the offending byte
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off = len(data)
		err = errors.New("unexpected end of JSON input")
	}
	line, col := lineCol(data, off)
	return fmt.Errorf("%d:%d: invalid JSON: %w", baseLine+line-1, col, err)
}

// lineCol turns a byte offset into a 1-based line and column (in bytes).
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := off - bytes.LastIndexByte(before, '\n')
	return line, col
}
