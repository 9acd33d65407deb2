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
	VocabFile           = "vocab.txt"
	TokenizerConfigFile = "tokenizer_config.json"
)

// LoadTokenizer loads the BERT/DistilBERT WordPiece tokenizer of a model
// directory: tokenizer.json if present, else vocab.txt; then
// tokenizer_config.json (do_lower_case, strip_accents,
// tokenize_chinese_chars, model_max_length, special tokens) if present.
//
// As in HF's BertTokenizerFast, the lower-case, strip-accents and CJK
// settings come from tokenizer_config.json with HF's defaults (true, follow
// lower-case, true), not from tokenizer.json's normalizer. The truncation and
// padding blocks of tokenizer.json are ignored: Featurize makes the windows.
func LoadTokenizer(modelDir string) (*Tokenizer, error) {
	opts := DefaultTokenizerOptions()
	var vocab map[string]int
	jsonPath := filepath.Join(modelDir, TokenizerJSONFile)
	b, err := os.ReadFile(jsonPath)
	switch {
	case err == nil:
		if vocab, err = parseTokenizerJSON(b, jsonPath, &opts); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		if vocab, err = readVocab(filepath.Join(modelDir, VocabFile)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cfgPath := filepath.Join(modelDir, TokenizerConfigFile)
	if b, err := os.ReadFile(cfgPath); err == nil {
		if err := parseTokenizerConfig(b, cfgPath, &opts); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
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
	if m.Type != "WordPiece" {
		return nil, fmt.Errorf("load tokenizer: %s: $.model.type is %q; only WordPiece (BERT) tokenizers are supported", path, m.Type)
	}
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

// parseTokenizerConfig applies tokenizer_config.json. Special tokens may be
// strings or {"content": ...} objects.
func parseTokenizerConfig(b []byte, path string, opts *TokenizerOptions) error {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("load tokenizer: %s: %w", path, jsonErrorAt(b, err))
	}
	field := func(key string, dst any) error {
		raw, ok := cfg[key]
		if !ok || string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("load tokenizer: %s: $.%s: %w", path, key, err)
		}
		return nil
	}
	if err := field("do_lower_case", &opts.Lowercase); err != nil {
		return err
	}
	if err := field("strip_accents", &opts.StripAccents); err != nil {
		return err
	}
	if err := field("tokenize_chinese_chars", &opts.HandleChineseChars); err != nil {
		return err
	}
	var maxLen float64
	if err := field("model_max_length", &maxLen); err != nil {
		return err
	}
	if maxLen > 0 && maxLen < 1e12 { // HF writes 1e30 for "no limit"
		opts.ModelMaxLength = int(maxLen)
	}
	for key, dst := range map[string]*string{
		"unk_token": &opts.UnkToken, "cls_token": &opts.ClsToken, "sep_token": &opts.SepToken,
		"pad_token": &opts.PadToken, "mask_token": &opts.MaskToken,
	} {
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

// jsonErrorAt adds the line and column to a JSON syntax error.
func jsonErrorAt(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(b, int(se.Offset)-1) // Offset counts the offending byte
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	return err
}
