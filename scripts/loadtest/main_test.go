package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJSONLRoundTrip: writeJSONL then readJSONL gives the values back (HTML
// characters unescaped in the file), and a bad line is named by file and line.
func TestJSONLRoundTrip(t *testing.T) {
	type rec struct {
		Q string `json:"q"`
		N int    `json:"n"`
	}
	path := filepath.Join(t.TempDir(), "x.jsonl")
	in := []rec{{"Lark & Mercer <Foods>", 1}, {"café", 2}}
	require.NoError(t, writeJSONL(path, in))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "Lark & Mercer <Foods>")
	out, err := readJSONL[rec](path)
	require.NoError(t, err)
	assert.Equal(t, in, out)

	require.NoError(t, os.WriteFile(path, []byte("{\"q\":\"a\",\"n\":1}\n\n{\"q\":\n"), 0o644))
	_, err = readJSONL[rec](path)
	assert.ErrorContains(t, err, path+":3:")
}

// TestPct: the q-quantile of latencies in milliseconds, 0 for none.
func TestPct(t *testing.T) {
	lat := []time.Duration{40 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond}
	assert.Equal(t, 10.0, pct(lat, 0))
	assert.Equal(t, 30.0, pct(lat, 0.5))
	assert.Equal(t, 40.0, pct(lat, 0.99))
	assert.Equal(t, 0.0, pct(nil, 0.5))
	assert.Equal(t, 40*time.Millisecond, lat[0], "the input is not reordered")
}
