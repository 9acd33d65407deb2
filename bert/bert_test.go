package bert_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
)

// fixtureBase is the base model directory of the tiny DistilBERT fixture,
// whose checkpoint files the tests below read.
func fixtureBase(t *testing.T) string {
	t.Helper()
	return filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
}

// TestSafetensorsAndBinAreIdentical: the fixture's model.safetensors and
// pytorch_model.bin hold the same tensors, of the same shapes, bit for bit.
func TestSafetensorsAndBinAreIdentical(t *testing.T) {
	fx := fixtureBase(t)
	a, err := bert.ReadSafetensors(filepath.Join(fx, "model.safetensors"))
	require.NoError(t, err)
	b, err := bert.ReadTorchBin(filepath.Join(fx, "pytorch_model.bin"))
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	for k, va := range a {
		vb, ok := b[k]
		require.True(t, ok, k)
		assert.Equal(t, va.Shape, vb.Shape, k)
		assert.Equal(t, va.Data, vb.Data, "%s: values must be bit-identical", k)
	}
}

// TestBadCheckpoints: a missing tensor, a wrong shape, a truncated file and a
// config with a wrong type each fail with an error naming the file and key.
func TestBadCheckpoints(t *testing.T) {
	fx := fixtureBase(t)
	good, err := bert.ReadSafetensors(filepath.Join(fx, "model.safetensors"))
	require.NoError(t, err)
	cfg, err := bert.LoadConfig(fx)
	require.NoError(t, err)
	clone := func() map[string]bert.HostTensor {
		out := map[string]bert.HostTensor{}
		for k, v := range good {
			out[k] = v
		}
		return out
	}

	w := clone()
	delete(w, "distilbert.transformer.layer.1.ffn.lin2.weight")
	_, err = bert.FromWeights(cfg, w, bert.LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing distilbert.transformer.layer.1.ffn.lin2.weight")

	w = clone()
	h := w["distilbert.transformer.layer.0.attention.q_lin.weight"]
	h.Shape = []int64{16, 64}
	w["distilbert.transformer.layer.0.attention.q_lin.weight"] = h
	_, err = bert.FromWeights(cfg, w, bert.LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"distilbert.transformer.layer.0.attention.q_lin.weight" has shape [16 64], the model's config needs [32 32]`)
	assert.Contains(t, err.Error(), "model.safetensors")

	w = clone()
	h = w["distilbert.embeddings.LayerNorm.bias"]
	h.NonFloat, h.Data = "I64", nil
	w["distilbert.embeddings.LayerNorm.bias"] = h
	_, err = bert.FromWeights(cfg, w, bert.LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"distilbert.embeddings.LayerNorm.bias" has dtype I64`)

	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(fx, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), b[:len(b)/2], 0o644))
	cb, _ := os.ReadFile(filepath.Join(fx, "config.json"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cb, 0o644))
	_, err = bert.Load(dir, bert.LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "model.safetensors"))

	bin := t.TempDir()
	pb, err := os.ReadFile(filepath.Join(fx, "pytorch_model.bin"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pytorch_model.bin"), pb[:len(pb)/3], 0o644))
	_, err = bert.ReadTorchBin(filepath.Join(bin, "pytorch_model.bin"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pytorch_model.bin")

	for _, bad := range []string{`{"model_type":"distilbert","dim":"wide"}`, `{"model_type":"distilbert","dim":30,"n_heads":4}`, `{"model_type":"gpt2"}`, `[1,2]`} {
		_, err := bert.ParseConfig([]byte(bad))
		assert.Error(t, err, bad)
	}
	_, err = bert.ParseConfig([]byte(`{"model_type":"distilbert","dim":"wide"}`))
	assert.Contains(t, err.Error(), `field "dim"`)
}

func TestCheckInputs(t *testing.T) {
	cfg := bert.TinyDistilBERTConfig() // 128 positions, vocab 30522
	for _, c := range []struct {
		maxSeq, vocab int
		err           string
	}{
		{128, 30522, ""},
		{64, 100, ""},
		{129, 30522, "max_seq_length 129 is longer than the model's max_position_embeddings 128"},
		{384, 30522, "use windows of at most 128 tokens"},
		{128, 30523, "the tokenizer has 30523 tokens but the model's vocab_size is 30522: ids 30522 and above would be out of range"},
	} {
		err := cfg.CheckInputs(c.maxSeq, c.vocab)
		if c.err == "" {
			assert.NoError(t, err, "%d/%d", c.maxSeq, c.vocab)
		} else {
			assert.ErrorContains(t, err, c.err)
		}
	}
}
