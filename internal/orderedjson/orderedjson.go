// Package orderedjson writes JSON objects whose keys keep the order they are
// given in, where a Go map would sort them: files whose key order means
// something (PEFT's rank_pattern) or mirrors another tool's output.
package orderedjson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marshal writes, compactly, the object of n keys whose i-th key and value
// are kv(i), in that order. A value json.Marshal refuses is an error that
// names its key.
func Marshal(n int, kv func(i int) (key string, value any)) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		key, value := kv(i)
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		v, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
