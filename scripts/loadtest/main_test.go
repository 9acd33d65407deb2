package main

import (
	"os"
	"path/filepath"
	"sync"
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

// TestClients: every request number below the stop is made exactly once,
// whatever the number of clients.
func TestClients(t *testing.T) {
	for _, c := range []int{1, 4} {
		var mu sync.Mutex
		seen := map[int]int{}
		clients(c, func(i int) bool { return i >= 100 }, func(i int) {
			mu.Lock()
			defer mu.Unlock()
			seen[i]++
		})
		assert.Len(t, seen, 100, "%d clients", c)
		for i := range 100 {
			assert.Equal(t, 1, seen[i], "%d clients: request %d", c, i)
		}
	}
}
