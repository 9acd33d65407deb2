package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
)

// tokenizerJSONKind reads $.model.type of a tokenizer.json.
func tokenizerJSONKind(b []byte, path string) (TokenizerKind, error) {
	var head struct {
		Model struct {
			Type string `json:"type"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return "", fmt.Errorf("load tokenizer: %s: %w", path, jsonErrorAt(b, err))
	}
	switch head.Model.Type {
	case "WordPiece":
		return WordPiece, nil
	case "BPE":
		return ByteLevelBPE, nil
	}
	return "", fmt.Errorf("load tokenizer: %s: $.model.type is %q; only WordPiece (BERT) and byte-level BPE (RoBERTa) tokenizers are supported",
		path, head.Model.Type)
}

// robertaJSON is the part of HF's tokenizer.json that a byte-level BPE
// (RoBERTa) tokenizer uses.
type robertaJSON struct {
	AddedTokens []struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		Dropout                 *float64        `json:"dropout"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
	} `json:"model"`
}

// byteLevelJSON is a ByteLevel pre-tokenizer or a RobertaProcessing
// post-processor (the fields they have).
type byteLevelJSON struct {
	Type           string `json:"type"`
	AddPrefixSpace *bool  `json:"add_prefix_space"`
	TrimOffsets    *bool  `json:"trim_offsets"`
	UseRegex       *bool  `json:"use_regex"`
	Sep            []any  `json:"sep"`
	Cls            []any  `json:"cls"`
}

// loadRobertaJSON builds a byte-level BPE tokenizer from tokenizer.json, then
// applies tokenizer_config.json.
func loadRobertaJSON(b []byte, path string, cfg tokenizerConfig, cfgPath string) (*Tokenizer, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("load tokenizer: %s: %s", path, fmt.Sprintf(format, a...))
	}
	var tj robertaJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, fmt.Errorf("load tokenizer: %s: %w", path, jsonErrorAt(b, err))
	}
	m := tj.Model
	switch {
	case len(m.Vocab) == 0:
		return nil, fail("$.model.vocab is empty")
	case len(tj.Normalizer) > 0 && string(tj.Normalizer) != "null":
		return nil, fail("$.normalizer is %s; a byte-level BPE (RoBERTa) tokenizer has none", clip(string(tj.Normalizer), 60))
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, fail("$.model.dropout is %v; BPE dropout is for training only and not supported", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "",
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fail("$.model has a continuing_subword_prefix or end_of_word_suffix; a byte-level BPE (RoBERTa) has neither")
	case m.ByteFallback:
		return nil, fail("$.model.byte_fallback is true; a byte-level BPE (RoBERTa) has no byte fallback")
	}
	var pre, post byteLevelJSON
	if err := json.Unmarshal(tj.PreTokenizer, &pre); err != nil || pre.Type != "ByteLevel" {
		return nil, fail("$.pre_tokenizer must be a ByteLevel pre-tokenizer (RoBERTa)")
	}
	if pre.AddPrefixSpace != nil && *pre.AddPrefixSpace {
		return nil, fail("$.pre_tokenizer.add_prefix_space is true; only RoBERTa's false is supported")
	}
	if pre.UseRegex != nil && !*pre.UseRegex {
		return nil, fail("$.pre_tokenizer.use_regex is false; only RoBERTa's true is supported")
	}
	if err := json.Unmarshal(tj.PostProcessor, &post); err != nil || post.Type != "RobertaProcessing" {
		return nil, fail("$.post_processor must be a RobertaProcessing (<s> q </s></s> c </s>)")
	}
	if post.TrimOffsets != nil && !*post.TrimOffsets {
		return nil, fail("$.post_processor.trim_offsets is false; only RoBERTa's true is supported")
	}
	if post.AddPrefixSpace == nil || *post.AddPrefixSpace {
		return nil, fail("$.post_processor.add_prefix_space is not false; only RoBERTa's false is supported")
	}
	merges, err := parseJSONMerges(m.Merges)
	if err != nil {
		return nil, fail("$.model.merges: %v", err)
	}
	opts := DefaultRobertaOptions()
	vocab := maps.Clone(m.Vocab)
	for _, a := range tj.AddedTokens {
		if a.SingleWord {
			return nil, fail("$.added_tokens: %q has single_word, which is not supported", a.Content)
		}
		if id, ok := vocab[a.Content]; ok && id != a.ID {
			return nil, fail("$.added_tokens: %q has id %d, the vocabulary %d", a.Content, a.ID, id)
		}
		vocab[a.Content] = a.ID
		opts.AddedTokens = append(opts.AddedTokens, AddedToken{Content: a.Content, LStrip: a.LStrip, RStrip: a.RStrip})
	}
	if m.UnkToken != nil {
		opts.UnkToken, opts.UnkForBytes = *m.UnkToken, true
	}
	opts.IgnoreMerges = m.IgnoreMerges
	for name, part := range map[string][]any{"sep": post.Sep, "cls": post.Cls} {
		tok, id, ok := tokenAndID(part)
		if !ok {
			return nil, fail("$.post_processor.%s must be [token, id]", name)
		}
		if vid, in := vocab[tok]; !in || vid != id {
			return nil, fail("$.post_processor.%s is [%q, %d], not a token of the vocabulary with that id", name, tok, id)
		}
		if name == "sep" {
			opts.SepToken = tok
		} else {
			opts.ClsToken = tok
		}
	}
	return newRobertaFromConfig(vocab, merges, opts, cfg, cfgPath, path)
}

// tokenAndID reads a RobertaProcessing [token, id] pair.
func tokenAndID(v []any) (string, int, bool) {
	if len(v) != 2 {
		return "", 0, false
	}
	tok, ok1 := v[0].(string)
	id, ok2 := v[1].(float64)
	return tok, int(id), ok1 && ok2 && id == float64(int(id))
}

// parseJSONMerges reads tokenizer.json's merges: ["a b", ...] (tokenizers
// before 0.20) or [["a", "b"], ...].
func parseJSONMerges(raw json.RawMessage) ([][2]string, error) {
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		out := make([][2]string, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("merge %d has %d parts, want 2", i+1, len(p))
			}
			out[i] = [2]string{p[0], p[1]}
		}
		return out, nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, fmt.Errorf("want a list of \"a b\" strings or [a, b] pairs: %w", err)
	}
	out := make([][2]string, len(lines))
	for i, l := range lines {
		p, ok := splitMerge(l)
		if !ok {
			return nil, fmt.Errorf("merge %d (%q) is not two tokens separated by a space", i+1, l)
		}
		out[i] = p
	}
	return out, nil
}

func splitMerge(line string) ([2]string, bool) {
	a, b, ok := strings.Cut(line, " ")
	return [2]string{a, b}, ok && !strings.Contains(b, " ")
}

// loadRobertaFiles builds a byte-level BPE tokenizer from vocab.json and
// merges.txt, then applies tokenizer_config.json.
func loadRobertaFiles(vocabPath, mergesPath string, cfg tokenizerConfig, cfgPath string) (*Tokenizer, error) {
	b, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(b, &vocab); err != nil {
		return nil, fmt.Errorf("load tokenizer: %s: %w", vocabPath, jsonErrorAt(b, err))
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("load tokenizer: %s: empty vocabulary", vocabPath)
	}
	merges, err := readMerges(mergesPath)
	if err != nil {
		return nil, err
	}
	return newRobertaFromConfig(vocab, merges, DefaultRobertaOptions(), cfg, cfgPath, vocabPath)
}

// readMerges reads merges.txt: an optional "#version" line, then one merge
// ("a b") a line, in rank order.
func readMerges(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var merges [][2]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(line, "#version") {
			continue
		}
		p, ok := splitMerge(line)
		if !ok {
			return nil, fmt.Errorf("load tokenizer: %s:%d: %q is not two tokens separated by a space", path, n, clip(line, 60))
		}
		merges = append(merges, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load tokenizer: %s: %w", path, err)
	}
	return merges, nil
}

// newRobertaFromConfig applies tokenizer_config.json (model_max_length,
// special tokens, add_prefix_space and trim_offsets, added_tokens_decoder)
// and builds the tokenizer; src names the file of the vocabulary.
func newRobertaFromConfig(vocab map[string]int, merges [][2]string, opts RobertaOptions, cfg tokenizerConfig, cfgPath, src string) (*Tokenizer, error) {
	if err := cfg.maxLength(cfgPath, &opts.ModelMaxLength); err != nil {
		return nil, err
	}
	if err := cfg.specialTokens(cfgPath, map[string]*string{
		"unk_token": &opts.UnkToken, "cls_token": &opts.ClsToken, "sep_token": &opts.SepToken,
		"pad_token": &opts.PadToken, "mask_token": &opts.MaskToken,
	}); err != nil {
		return nil, err
	}
	for key, want := range map[string]bool{"add_prefix_space": false, "trim_offsets": true} {
		v := want
		if err := cfg.field(cfgPath, key, &v); err != nil {
			return nil, err
		}
		if v != want {
			return nil, fmt.Errorf("load tokenizer: %s: $.%s is %v; only RoBERTa's %v is supported", cfgPath, key, v, want)
		}
	}
	var decoder map[string]struct {
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
	}
	if err := cfg.field(cfgPath, "added_tokens_decoder", &decoder); err != nil {
		return nil, err
	}
	if len(decoder) > 0 {
		vocab = maps.Clone(vocab)
		var fromCfg []AddedToken
		for key, a := range decoder {
			id, err := strconv.Atoi(key)
			if err != nil {
				return nil, fmt.Errorf("load tokenizer: %s: $.added_tokens_decoder: key %q is not an id", cfgPath, key)
			}
			if a.SingleWord {
				return nil, fmt.Errorf("load tokenizer: %s: $.added_tokens_decoder: %q has single_word, which is not supported", cfgPath, a.Content)
			}
			if vid, ok := vocab[a.Content]; ok && vid != id {
				return nil, fmt.Errorf("load tokenizer: %s: $.added_tokens_decoder: %q has id %d, the vocabulary %d", cfgPath, a.Content, id, vid)
			}
			vocab[a.Content] = id
			fromCfg = append(fromCfg, AddedToken{Content: a.Content, LStrip: a.LStrip, RStrip: a.RStrip})
		}
		// tokenizer_config.json's flags win over tokenizer.json's: its tokens come first.
		opts.AddedTokens = append(fromCfg, opts.AddedTokens...)
	}
	t, err := NewRobertaTokenizer(vocab, merges, opts)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", src, err)
	}
	return t, nil
}
