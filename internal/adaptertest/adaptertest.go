// Package adaptertest makes variants of an adapter directory for tests:
// the same files with the weights passed through a function (another
// adapter over the same base, or one that does not fit it).
package adaptertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// Rewrite copies the adapter directory src to dst (every file, the
// tokenizer's included) with each tensor of its weights passed through fn.
func Rewrite(t testing.TB, src, dst string, fn func(name string, v []float32, shape []int64) ([]float32, []int64)) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o755))
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == peft.WeightsFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	in, err := safetensors.Open(filepath.Join(src, peft.WeightsFile))
	require.NoError(t, err)
	defer in.Close()
	var out []safetensors.Tensor
	for _, name := range in.Names() {
		v, shape, err := in.Float32s(name)
		require.NoError(t, err)
		v, shape = fn(name, v, shape)
		out = append(out, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: safetensors.Float32sToBytes(v)})
	}
	require.NoError(t, safetensors.Write(filepath.Join(dst, peft.WeightsFile), out, map[string]string{"format": "pt"}))
}

// ScaleB multiplies every lora_B weight by f: another adapter over the same
// base, whose answers differ.
func ScaleB(f float32) func(string, []float32, []int64) ([]float32, []int64) {
	return func(name string, v []float32, shape []int64) ([]float32, []int64) {
		if strings.Contains(name, "lora_B") {
			for i := range v {
				v[i] *= f
			}
		}
		return v, shape
	}
}

// Scaled is a copy of the adapter in src, in a test directory, with every
// lora_B weight multiplied by f.
func Scaled(t testing.TB, src string, f float32) string {
	t.Helper()
	dst := t.TempDir()
	Rewrite(t, src, dst, ScaleB(f))
	return dst
}
