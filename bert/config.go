// Package bert implements DistilBERT, BERT and RoBERTa for extractive question
// answering on gotch, with Hugging Face's parameter names, so that HF checkpoints
// load with no rename table and PEFT adapters address the same modules.
//
// The architectures share one post-LayerNorm transformer: embeddings (word +
// position [+ token type]) → LayerNorm → N × [self-attention → LN(x + attn) →
// GELU feed-forward → LN(x + ffn)] → qa_outputs (start and end logits). Only the
// parameter names, the token types, the position ids (RoBERTa's count from
// pad_token_id + 1 and skip padding) and a few config fields differ.
package bert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config is the model configuration read from HF's config.json, with the
// DistilBERT and BERT field names mapped onto one set of fields.
type Config struct {
	ModelType        string  // "distilbert", "bert" or "roberta"
	Dim              int64   // dim / hidden_size
	Layers           int64   // n_layers / num_hidden_layers
	Heads            int64   // n_heads / num_attention_heads
	Hidden           int64   // hidden_dim / intermediate_size
	VocabSize        int64   // vocab_size
	MaxPositions     int64   // max_position_embeddings
	TypeVocabSize    int64   // type_vocab_size (BERT, RoBERTa; 0 for DistilBERT)
	Sinusoidal       bool    // sinusoidal_pos_embds (DistilBERT)
	Activation       string  // activation / hidden_act: gelu or relu
	Dropout          float64 // dropout / hidden_dropout_prob
	AttentionDropout float64 // attention_dropout / attention_probs_dropout_prob
	QADropout        float64 // qa_dropout (DistilBERT); BERT QA applies none
	LayerNormEps     float64 // 1e-12 for DistilBERT; layer_norm_eps for BERT and RoBERTa
	InitRange        float64 // initializer_range
	PadTokenID       int64   // pad_token_id
	// Raw is the config.json object as read, written back on export.
	Raw map[string]any
}

// DefaultDistilBERTConfig is distilbert-base-uncased's configuration.
func DefaultDistilBERTConfig() Config {
	return Config{ModelType: "distilbert", Dim: 768, Layers: 6, Heads: 12, Hidden: 3072, VocabSize: 30522,
		MaxPositions: 512, Activation: "gelu", Dropout: 0.1, AttentionDropout: 0.1, QADropout: 0.1,
		LayerNormEps: 1e-12, InitRange: 0.02}
}

// TinyDistilBERTConfig is the shape of the tiny-distilbert-qa fixture
// (scripts/ref/make_fixtures.py distilbert).
func TinyDistilBERTConfig() Config {
	c := DefaultDistilBERTConfig()
	c.Dim, c.Layers, c.Heads, c.Hidden, c.MaxPositions = 32, 2, 4, 64, 128
	return c
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a config.json document; wrong types and impossible shapes
// are errors that name the field.
func ParseConfig(b []byte) (Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return Config{}, fmt.Errorf("not a JSON object: %w", err)
	}
	r := reader{raw: raw}
	c := Config{Raw: raw}
	c.ModelType = r.str("model_type", "")
	if c.ModelType == "" {
		// Old configs name only the architecture.
		arch := r.strList("architectures")
		switch {
		case len(arch) > 0 && strings.HasPrefix(arch[0], "DistilBert"):
			c.ModelType = "distilbert"
		case len(arch) > 0 && strings.HasPrefix(arch[0], "Roberta"):
			c.ModelType = "roberta"
		default:
			c.ModelType = "bert"
		}
	}
	padDefault := int64(0)
	switch c.ModelType {
	case "distilbert":
		c.Dim = r.int("dim", 768)
		c.Layers = r.int("n_layers", 6)
		c.Heads = r.int("n_heads", 12)
		c.Hidden = r.int("hidden_dim", 3072)
		c.Sinusoidal = r.bool("sinusoidal_pos_embds", false)
		c.Activation = r.str("activation", "gelu")
		c.Dropout = r.float("dropout", 0.1)
		c.AttentionDropout = r.float("attention_dropout", 0.1)
		c.QADropout = r.float("qa_dropout", 0.1)
		c.LayerNormEps = 1e-12
	case "bert", "roberta":
		// RoBERTa is BERT's encoder under other names, with RobertaConfig's
		// defaults: BERT's but for the vocabulary and pad_token_id 1.
		if c.ModelType == "roberta" {
			padDefault = 1
		}
		c.Dim = r.int("hidden_size", 768)
		c.Layers = r.int("num_hidden_layers", 12)
		c.Heads = r.int("num_attention_heads", 12)
		c.Hidden = r.int("intermediate_size", 3072)
		c.TypeVocabSize = r.int("type_vocab_size", 2)
		c.Activation = r.str("hidden_act", "gelu")
		c.Dropout = r.float("hidden_dropout_prob", 0.1)
		c.AttentionDropout = r.float("attention_probs_dropout_prob", 0.1)
		c.LayerNormEps = r.float("layer_norm_eps", 1e-12)
		if pe := r.str("position_embedding_type", "absolute"); pe != "absolute" {
			r.errs = append(r.errs, fmt.Sprintf("position_embedding_type %q is not supported (only absolute)", pe))
		}
	default:
		return Config{}, fmt.Errorf("model_type %q is not supported (want distilbert, bert or roberta)", c.ModelType)
	}
	vocabDefault := int64(30522)
	if c.ModelType == "roberta" {
		vocabDefault = 50265
	}
	c.VocabSize = r.int("vocab_size", vocabDefault)
	c.MaxPositions = r.int("max_position_embeddings", 512)
	c.InitRange = r.float("initializer_range", 0.02)
	c.PadTokenID = r.int("pad_token_id", padDefault)
	if len(r.errs) > 0 {
		return Config{}, fmt.Errorf("%s", r.errs[0])
	}
	return c, c.Validate()
}

// Validate checks that the shapes make a model.
func (c Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.Hidden <= 0 || c.VocabSize <= 0 || c.MaxPositions <= 0:
		return fmt.Errorf("dim %d, layers %d, heads %d, hidden %d, vocab %d and max positions %d must all be positive",
			c.Dim, c.Layers, c.Heads, c.Hidden, c.VocabSize, c.MaxPositions)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("dim %d is not a multiple of the number of heads %d", c.Dim, c.Heads)
	case c.Activation != "gelu" && c.Activation != "relu":
		return fmt.Errorf("activation %q is not supported (want gelu or relu)", c.Activation)
	case c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize:
		return fmt.Errorf("pad_token_id %d is outside the vocabulary of %d", c.PadTokenID, c.VocabSize)
	case c.ModelType == "roberta" && c.MaxWindow() <= 0:
		return fmt.Errorf("max_position_embeddings %d leaves no position after pad_token_id %d (RoBERTa's positions start at pad_token_id + 1)",
			c.MaxPositions, c.PadTokenID)
	}
	for name, p := range map[string]float64{"dropout": c.Dropout, "attention_dropout": c.AttentionDropout, "qa_dropout": c.QADropout} {
		if p < 0 || p >= 1 {
			return fmt.Errorf("%s %g must be in [0, 1)", name, p)
		}
	}
	return nil
}

// reader pulls typed fields out of a JSON object, collecting type errors.
type reader struct {
	raw  map[string]any
	errs []string
}

func (r *reader) get(k string) (any, bool) {
	v, ok := r.raw[k]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// field reads field k as a T, the type encoding/json decodes it to: false
// when it is absent or null, and also when it is of another type or valid
// rejects it, which is recorded as an error saying what was wanted.
func field[T any](r *reader, k, want string, valid func(T) bool) (T, bool) {
	var zero T
	v, ok := r.get(k)
	if !ok {
		return zero, false
	}
	t, isT := v.(T)
	if !isT || valid != nil && !valid(t) {
		r.errs = append(r.errs, fmt.Sprintf("field %q: want %s, got %v", k, want, v))
		return zero, false
	}
	return t, true
}

func (r *reader) int(k string, def int64) int64 {
	f, ok := field(r, k, "an integer", func(f float64) bool { return f == float64(int64(f)) })
	if !ok {
		return def
	}
	return int64(f)
}

func (r *reader) float(k string, def float64) float64 {
	if f, ok := field[float64](r, k, "a number", nil); ok {
		return f
	}
	return def
}

func (r *reader) bool(k string, def bool) bool {
	if b, ok := field[bool](r, k, "true or false", nil); ok {
		return b
	}
	return def
}

func (r *reader) str(k, def string) string {
	if s, ok := field[string](r, k, "a string", nil); ok {
		return s
	}
	return def
}

func (r *reader) strList(k string) []string {
	v, ok := r.get(k)
	if !ok {
		return nil
	}
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// BertLayout reports whether the model has BERT's encoder layout
// (attention.self.query, ..., token type embeddings): BERT and RoBERTa.
func (c Config) BertLayout() bool { return c.ModelType == "bert" || c.ModelType == "roberta" }

// PaddedPositions reports whether position ids are RoBERTa's: counted from
// pad_token_id + 1 over the non-padding tokens, padding at pad_token_id
// (HF's create_position_ids_from_input_ids), rather than 0, 1, 2, ...
func (c Config) PaddedPositions() bool { return c.ModelType == "roberta" }

// MaxWindow is the longest window the position embeddings can take:
// max_position_embeddings, less pad_token_id + 1 for RoBERTa, whose first
// position is pad_token_id + 1 (roberta-base: 514 positions, 512 tokens).
func (c Config) MaxWindow() int64 {
	if c.PaddedPositions() {
		return c.MaxPositions - c.PadTokenID - 1
	}
	return c.MaxPositions
}

// Architecture is the transformers class of the QA model, for config.json's
// architectures.
func (c Config) Architecture() string {
	switch c.ModelType {
	case "bert":
		return "BertForQuestionAnswering"
	case "roberta":
		return "RobertaForQuestionAnswering"
	}
	return "DistilBertForQuestionAnswering"
}

// CheckInputs refuses, before any forward, inputs that would fail inside
// LibTorch: windows longer than the position embeddings take (MaxWindow), and
// a tokenizer whose ids reach past vocab_size (an embedding lookup out of range).
func (c Config) CheckInputs(maxSeqLength, tokenizerVocab int) error {
	if w := c.MaxWindow(); int64(maxSeqLength) > w {
		if w != c.MaxPositions {
			return fmt.Errorf("max_seq_length %d is longer than the model takes (max_position_embeddings %d less pad_token_id %d + 1): use windows of at most %d tokens",
				maxSeqLength, c.MaxPositions, c.PadTokenID, w)
		}
		return fmt.Errorf("max_seq_length %d is longer than the model's max_position_embeddings %d: use windows of at most %d tokens",
			maxSeqLength, c.MaxPositions, c.MaxPositions)
	}
	if int64(tokenizerVocab) > c.VocabSize {
		return fmt.Errorf("the tokenizer has %d tokens but the model's vocab_size is %d: ids %d and above would be out of range; use the tokenizer the model was trained with",
			tokenizerVocab, c.VocabSize, c.VocabSize)
	}
	return nil
}
