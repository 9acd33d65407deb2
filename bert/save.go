package bert

import (
	"os"
	"path/filepath"

	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// ConfigJSON is the model's config.json document (HF field names).
func (c Config) ConfigJSON() map[string]any {
	if c.Raw != nil {
		return c.Raw
	}
	if c.BertLayout() {
		return map[string]any{"model_type": c.ModelType, "architectures": []string{c.Architecture()},
			"hidden_size": c.Dim, "num_hidden_layers": c.Layers, "num_attention_heads": c.Heads, "intermediate_size": c.Hidden,
			"vocab_size": c.VocabSize, "max_position_embeddings": c.MaxPositions, "type_vocab_size": c.TypeVocabSize,
			"hidden_act": c.Activation, "hidden_dropout_prob": c.Dropout, "attention_probs_dropout_prob": c.AttentionDropout,
			"layer_norm_eps": c.LayerNormEps, "initializer_range": c.InitRange, "pad_token_id": c.PadTokenID}
	}
	return map[string]any{"model_type": "distilbert", "architectures": []string{c.Architecture()},
		"dim": c.Dim, "n_layers": c.Layers, "n_heads": c.Heads, "hidden_dim": c.Hidden, "vocab_size": c.VocabSize,
		"max_position_embeddings": c.MaxPositions, "sinusoidal_pos_embds": c.Sinusoidal, "activation": c.Activation,
		"dropout": c.Dropout, "attention_dropout": c.AttentionDropout, "qa_dropout": c.QADropout,
		"initializer_range": c.InitRange, "pad_token_id": c.PadTokenID, "seq_classif_dropout": 0.2, "tie_weights_": true}
}

// Save writes config.json and model.safetensors (float32) into dir.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var tensors []safetensors.Tensor
	for _, p := range m.params {
		v := torch.ToFloat32(p.Tensor)
		tensors = append(tensors, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: p.Tensor.MustSize(), Data: safetensors.Float32sToBytes(v)})
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(dir, "config.json"), m.Config.ConfigJSON())
}
