package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files LoadTokenizer reads from a model directory.
const (
	TokenizerJSONFile   = "tokenizer.json"
	VocabFile           = "vocab.txt"  // BERT WordPiece
	VocabJSONFile       = "vocab.json" // RoBERTa byte-level BPE
	MergesFile          = "merges.txt" // RoBERTa byte-level BPE
	TokenizerConfigFile = "tokenizer_config.json"
)

// TokenizerFiles are the files LoadTokenizer may read from a model
// directory: the ones to copy (or fetch) with a tokenizer, for an adapter or
// a merged model. special_tokens_map.json is not read but travels with them.
var TokenizerFiles = []string{TokenizerJSONFile, VocabFile, VocabJSONFile, MergesFile, TokenizerConfigFile, "special_tokens_map.json"}

// HasTokenizerFiles reports whether dir holds a tokenizer of its own:
// tokenizer.json, vocab.txt, or vocab.json with merges.txt.
func HasTokenizerFiles(dir string) bool {
	return fileExists(filepath.Join(dir, TokenizerJSONFile)) || fileExists(filepath.Join(dir, VocabFile)) ||
		fileExists(filepath.Join(dir, VocabJSONFile)) && fileExists(filepath.Join(dir, MergesFile))
}

// LoadTokenizer loads the tokenizer of a model directory, of the kind its
// files say: tokenizer.json if present (model type WordPiece: BERT; BPE with
// a ByteLevel pre-tokenizer: RoBERTa), else vocab.txt (BERT) or vocab.json
// with merges.txt (RoBERTa) — where both are present, tokenizer_config.json's
// tokenizer_class decides, vocab.txt otherwise. Then tokenizer_config.json
// (model_max_length, special tokens, and for BERT do_lower_case,
// strip_accents, tokenize_chinese_chars; for RoBERTa added_tokens_decoder's
// lstrip/rstrip) if present.
//
// As in HF's BertTokenizerFast, the lower-case, strip-accents and CJK
// settings come from tokenizer_config.json with HF's defaults (true, follow
// lower-case, true), not from tokenizer.json's normalizer. The truncation and
// padding blocks of tokenizer.json are ignored: Featurize makes the windows.
// RoBERTa tokenizers with add_prefix_space or without trim_offsets are
// refused, as are normalizers, dropout and subword prefixes or suffixes in a
// BPE model: none of them is RobertaTokenizerFast's.
func LoadTokenizer(modelDir string) (*Tokenizer, error) {
	cfgPath := filepath.Join(modelDir, TokenizerConfigFile)
	cfg, err := readTokenizerConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	var t *Tokenizer
	jsonPath := filepath.Join(modelDir, TokenizerJSONFile)
	b, err := os.ReadFile(jsonPath)
	switch {
	case err == nil:
		var kind TokenizerKind
		if kind, err = tokenizerJSONKind(b, jsonPath); err == nil {
			if kind == ByteLevelBPE {
				t, err = loadRobertaJSON(b, jsonPath, cfg, cfgPath)
			} else {
				t, err = loadBert(modelDir, func(opts *TokenizerOptions) (map[string]int, error) {
					return parseTokenizerJSON(b, jsonPath, opts)
				}, cfg, cfgPath)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		t, err = loadFromVocabFiles(modelDir, cfg, cfgPath)
	default:
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.checkClass(t.kind, cfgPath); err != nil {
		return nil, err
	}
	return t, nil
}

// loadFromVocabFiles loads vocab.txt (BERT) or vocab.json + merges.txt (RoBERTa).
func loadFromVocabFiles(modelDir string, cfg tokenizerConfig, cfgPath string) (*Tokenizer, error) {
	vocabTxt := filepath.Join(modelDir, VocabFile)
	vocabJSON := filepath.Join(modelDir, VocabJSONFile)
	hasTxt, hasJSON := fileExists(vocabTxt), fileExists(vocabJSON)
	if hasJSON && (!hasTxt || cfg.classKind() == ByteLevelBPE) {
		return loadRobertaFiles(vocabJSON, filepath.Join(modelDir, MergesFile), cfg, cfgPath)
	}
	if !hasTxt {
		return nil, fmt.Errorf("load tokenizer: no tokenizer in %s: want %s, %s (BERT WordPiece) or %s with %s (RoBERTa byte-level BPE)",
			modelDir, TokenizerJSONFile, VocabFile, VocabJSONFile, MergesFile)
	}
	return loadBert(modelDir, func(*TokenizerOptions) (map[string]int, error) { return readVocab(vocabTxt) }, cfg, cfgPath)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadBert builds a WordPiece tokenizer from the vocabulary read and the options
// tokenizer_config.json sets.
func loadBert(modelDir string, read func(*TokenizerOptions) (map[string]int, error), cfg tokenizerConfig, cfgPath string) (*Tokenizer, error) {
	opts := DefaultTokenizerOptions()
	vocab, err := read(&opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.applyBert(&opts, cfgPath); err != nil {
		return nil, err
	}
	t, err := NewTokenizer(vocab, opts)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", modelDir, err)
	}
	return t, nil
}

// readVocab reads a WordPiece vocabulary: one token per line, id = line number - 1.
func readVocab(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return nil, fmt.Errorf("load tokenizer: %s: empty vocabulary", path)
	}
	vocab := map[string]int{}
	for i, tok := range strings.Split(text, "\n") {
		vocab[tok] = i
	}
	return vocab, nil
}

// tokenizerJSON is the part of HF's tokenizer.json that a BERT WordPiece
// tokenizer uses.
type tokenizerJSON struct {
	AddedTokens []struct {
		Content string `json:"content"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type      string `json:"type"`
		CleanText *bool  `json:"clean_text"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	Model struct {
		Type                    string         `json:"type"`
		Vocab                   map[string]int `json:"vocab"`
		UnkToken                *string        `json:"unk_token"`
		ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int           `json:"max_input_chars_per_word"`
	} `json:"model"`
}

func parseTokenizerJSON(b []byte, path string, opts *TokenizerOptions) (map[string]int, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, fmt.Errorf("load tokenizer: %s: %w", path, jsonErrorAt(b, err))
	}
	m := tj.Model
	if len(m.Vocab) == 0 {
		return nil, fmt.Errorf("load tokenizer: %s: $.model.vocab is empty", path)
	}
	if tj.Normalizer == nil || tj.Normalizer.Type != "BertNormalizer" {
		return nil, fmt.Errorf("load tokenizer: %s: $.normalizer must be a BertNormalizer", path)
	}
	if tj.PreTokenizer == nil || tj.PreTokenizer.Type != "BertPreTokenizer" {
		return nil, fmt.Errorf("load tokenizer: %s: $.pre_tokenizer must be a BertPreTokenizer", path)
	}
	if tj.Normalizer.CleanText != nil {
		opts.CleanText = *tj.Normalizer.CleanText
	}
	if m.UnkToken != nil {
		opts.UnkToken = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		opts.ContinuingSubwordPrefix = *m.ContinuingSubwordPrefix
	}
	if m.MaxInputCharsPerWord != nil {
		opts.MaxInputCharsPerWord = *m.MaxInputCharsPerWord
	}
	for _, a := range tj.AddedTokens {
		opts.AddedTokens = append(opts.AddedTokens, a.Content)
	}
	return m.Vocab, nil
}

// tokenizerConfig is tokenizer_config.json, key by key (empty when absent).
type tokenizerConfig map[string]json.RawMessage

// readTokenizerConfig reads tokenizer_config.json; a missing file is an empty config.
func readTokenizerConfig(path string) (tokenizerConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokenizerConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var cfg tokenizerConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("load tokenizer: %s: %w", path, jsonErrorAt(b, err))
	}
	if cfg == nil { // the file says null
		cfg = tokenizerConfig{}
	}
	return cfg, nil
}

// field decodes the value of key into dst; a missing or null key leaves dst.
func (cfg tokenizerConfig) field(path, key string, dst any) error {
	raw, ok := cfg[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("load tokenizer: %s: $.%s: %w", path, key, err)
	}
	return nil
}

// applyBert applies tokenizer_config.json to a WordPiece tokenizer's options.
func (cfg tokenizerConfig) applyBert(opts *TokenizerOptions, path string) error {
	if err := cfg.field(path, "do_lower_case", &opts.Lowercase); err != nil {
		return err
	}
	if err := cfg.field(path, "strip_accents", &opts.StripAccents); err != nil {
		return err
	}
	if err := cfg.field(path, "tokenize_chinese_chars", &opts.HandleChineseChars); err != nil {
		return err
	}
	if err := cfg.maxLength(path, &opts.ModelMaxLength); err != nil {
		return err
	}
	return cfg.specialTokens(path, map[string]*string{
		"unk_token": &opts.UnkToken, "cls_token": &opts.ClsToken, "sep_token": &opts.SepToken,
		"pad_token": &opts.PadToken, "mask_token": &opts.MaskToken,
	})
}

// maxLength reads model_max_length; HF writes 1e30 for "no limit" (0 here).
func (cfg tokenizerConfig) maxLength(path string, dst *int) error {
	var maxLen float64
	if err := cfg.field(path, "model_max_length", &maxLen); err != nil {
		return err
	}
	if maxLen > 0 && maxLen < 1e12 {
		*dst = int(maxLen)
	}
	return nil
}

// specialTokens reads special tokens, strings or {"content": ...} objects.
func (cfg tokenizerConfig) specialTokens(path string, dsts map[string]*string) error {
	for key, dst := range dsts {
		raw, ok := cfg[key]
		if !ok || string(raw) == "null" {
			continue
		}
		var obj struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, dst) != nil {
			if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == "" {
				return fmt.Errorf("load tokenizer: %s: $.%s: want a string or {\"content\": ...}", path, key)
			}
			*dst = obj.Content
		}
	}
	return nil
}

// classKind is the kind tokenizer_class names ("" when absent or unknown).
func (cfg tokenizerConfig) classKind() TokenizerKind {
	var class string
	if json.Unmarshal(cfg["tokenizer_class"], &class) != nil {
		return ""
	}
	switch strings.TrimSuffix(class, "Fast") {
	case "BertTokenizer", "DistilBertTokenizer":
		return WordPiece
	case "RobertaTokenizer":
		return ByteLevelBPE
	}
	return ""
}

// checkClass refuses a tokenizer_class that names another kind than the
// files hold (a BertTokenizer over vocab.json and merges.txt).
func (cfg tokenizerConfig) checkClass(kind TokenizerKind, path string) error {
	if k := cfg.classKind(); k != "" && k != kind {
		return fmt.Errorf("load tokenizer: %s: $.tokenizer_class is %s, a %s tokenizer, but the tokenizer files are %s",
			path, cfg["tokenizer_class"], k, kind)
	}
	return nil
}

// jsonErrorAt adds the line and column to a JSON syntax error.
func jsonErrorAt(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(b, int(se.Offset)-1) // Offset counts the offending byte
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	return err
}
