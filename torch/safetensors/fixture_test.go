package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// fixturePath is a file of the generated tiny DistilBERT fixture (make
// reference; written by HF's safetensors library).
func fixturePath(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), filepath.FromSlash(rel))
}

func TestFixtureBaseModel(t *testing.T) {
	path := fixturePath(t, "base/model.safetensors")
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata)
	require.Len(t, f.Tensors, 38)
	var params int64
	for _, ti := range f.Tensors {
		assert.Equal(t, F32, ti.DType, ti.Name)
		params += ti.NumElements()
	}
	assert.Equal(t, int64(998018), params, "parameter count from the fixture README")

	shapes := map[string][]int64{
		"distilbert.embeddings.word_embeddings.weight":          {30522, 32},
		"distilbert.embeddings.position_embeddings.weight":      {128, 32},
		"distilbert.transformer.layer.1.attention.q_lin.weight": {32, 32},
		"distilbert.transformer.layer.0.ffn.lin1.weight":        {64, 32},
		"distilbert.transformer.layer.0.ffn.lin2.weight":        {32, 64},
		"qa_outputs.weight": {2, 32},
		"qa_outputs.bias":   {2},
	}
	for name, shape := range shapes {
		info, ok := f.Info(name)
		require.True(t, ok, name)
		assert.Equal(t, shape, info.Shape, name)
	}

	emb, shape, err := f.Float32s("distilbert.embeddings.word_embeddings.weight")
	require.NoError(t, err)
	assert.Equal(t, []int64{30522, 32}, shape)
	require.Len(t, emb, 30522*32)
	assert.Equal(t, make([]float32, 32), emb[:32], "row 0 ([PAD]) is zero")
	assert.NotEqual(t, make([]float32, 32), emb[32:64], "row 1 is not")
	ln, _, err := f.Float32s("distilbert.embeddings.LayerNorm.weight")
	require.NoError(t, err)
	for _, v := range ln {
		assert.InDelta(t, 1.0, v, 0.6, "LayerNorm weight = 1 + N(0, 0.1)")
	}
}

// Reading a file written by the Python library and writing it back must
// reproduce it byte for byte.
func TestFixtureRewriteIsByteIdentical(t *testing.T) {
	for _, rel := range []string{"base/model.safetensors", "adapter/adapter_model.safetensors"} {
		t.Run(rel, func(t *testing.T) {
			path := fixturePath(t, rel)
			f, err := Open(path)
			require.NoError(t, err)
			defer f.Close()
			var tensors []Tensor
			for _, name := range f.Names() {
				tt, err := f.Tensor(name)
				require.NoError(t, err)
				tensors = append(tensors, tt)
			}
			var buf bytes.Buffer
			require.NoError(t, Encode(&buf, tensors, f.Metadata))
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(orig, buf.Bytes()), "rewritten %s differs from the original", rel)
		})
	}
}

func TestFixtureAdapter(t *testing.T) {
	f, err := Open(fixturePath(t, "adapter/adapter_model.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	require.Len(t, f.Tensors, 10)
	a, ok := f.Info("base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight")
	require.True(t, ok)
	assert.Equal(t, []int64{4, 32}, a.Shape)
	b, ok := f.Info("base_model.model.distilbert.transformer.layer.1.attention.v_lin.lora_B.weight")
	require.True(t, ok)
	assert.Equal(t, []int64{32, 4}, b.Shape)
}
