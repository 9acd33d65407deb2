package bert_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// TestSaveLoadRoundTrip: a model directory written by Save (config.json and
// float32 model.safetensors) loads back with the same configuration and
// every parameter bit-identical; a bf16 model is written as float32 holding
// its bf16 values exactly.
func TestSaveLoadRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		cfg   func() bert.Config
		dtype gotch.DType
	}{
		{"distilbert fp32", bert.TinyDistilBERTConfig, gotch.Float},
		{"distilbert bf16", bert.TinyDistilBERTConfig, gotch.BFloat16},
		{"bert fp32", func() bert.Config {
			c := bert.TinyDistilBERTConfig()
			c.ModelType, c.TypeVocabSize, c.Activation = "bert", 2, "gelu"
			return c
		}, gotch.Float},
		{"roberta fp32", func() bert.Config {
			c := bert.TinyDistilBERTConfig()
			c.ModelType, c.TypeVocabSize, c.PadTokenID, c.MaxPositions = "roberta", 1, 1, 130
			return c
		}, gotch.Float},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := seeded(t, c.cfg(), c.dtype, 11)
			defer m.Drop()
			dir := t.TempDir()
			require.NoError(t, m.Save(dir))

			f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
			require.NoError(t, err)
			for _, info := range f.Tensors {
				assert.Equal(t, safetensors.F32, info.DType, info.Name)
			}
			f.Close()

			back, err := bert.Load(dir, bert.LoadOptions{Device: gotch.CPU})
			require.NoError(t, err)
			defer back.Drop()
			assert.Equal(t, m.Config.ModelType, back.Config.ModelType)
			assert.Equal(t, m.Config.PadTokenID, back.Config.PadTokenID)
			if m.Config.BertLayout() {
				// HF's names: BertModel's or RobertaModel's prefix.
				assert.Equal(t, m.Config.ModelType+".embeddings.word_embeddings.weight", back.Params()[0].Name)
			}
			assert.Equal(t, []int64{m.Config.Dim, m.Config.Layers, m.Config.Heads, m.Config.Hidden, m.Config.VocabSize, m.Config.MaxPositions, m.Config.TypeVocabSize},
				[]int64{back.Config.Dim, back.Config.Layers, back.Config.Heads, back.Config.Hidden, back.Config.VocabSize, back.Config.MaxPositions, back.Config.TypeVocabSize})
			require.Len(t, back.Params(), len(m.Params()))
			for i, p := range m.Params() {
				q := back.Params()[i]
				require.Equal(t, p.Name, q.Name)
				assert.Equal(t, torch.ToFloat32(p.Tensor), torch.ToFloat32(q.Tensor), "%s: bit-identical", p.Name)
			}
		})
	}
}
