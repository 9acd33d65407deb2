package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// tinyVocab is a small WordPiece vocabulary for hand-computed cases.
var tinyVocab = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"the", "cat", "sat", "on", "mat", ".", ",", "caf", "##e", "€", "5", "’", "s", "naive",
	"a", "b", "c", "d", "e", "f", "g", "h", "##s", "un", "##aff", "##able", "日", "##5",
}

func tinyTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	vocab := map[string]int{}
	for i, tok := range tinyVocab {
		vocab[tok] = i
	}
	tok, err := NewTokenizer(vocab, DefaultTokenizerOptions())
	require.NoError(t, err)
	return tok
}

func TestTokenizerHandCases(t *testing.T) {
	tok := tinyTokenizer(t)
	tests := []struct {
		text    string
		tokens  []string
		offsets [][2]int
	}{
		{"The cat sat.", []string{"the", "cat", "sat", "."}, [][2]int{{0, 3}, {4, 7}, {8, 11}, {11, 12}}},
		// é is one code point (two bytes): offsets count code points
		{"Café’s €5", []string{"caf", "##e", "’", "s", "€", "##5"}, [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {7, 8}, {8, 9}}},
		// decomposed e + U+0301: the accent is dropped, the token spans both code points
		{"cafe\u0301 x", []string{"caf", "##e", "[UNK]"}, [][2]int{{0, 3}, {3, 4}, {6, 7}}},
		{"NAÏVE unaffable", []string{"naive", "un", "##aff", "##able"}, [][2]int{{0, 5}, {6, 8}, {8, 11}, {11, 15}}},
		{"a日b", []string{"a", "日", "b"}, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		{"ab\u200bc zz", []string{"[UNK]", "[UNK]"}, [][2]int{{0, 4}, {5, 7}}},
		{"a[MASK]b [mask]", []string{"a", "[MASK]", "b", "[UNK]", "[UNK]", "[UNK]"}, [][2]int{{0, 1}, {1, 7}, {7, 8}, {9, 10}, {10, 14}, {14, 15}}},
		{" \t\n", []string{}, [][2]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			enc, err := tok.Encode(tc.text)
			require.NoError(t, err)
			assertEncoding(t, tok, enc, tc.tokens, tc.offsets)
		})
	}
}

// assertEncoding checks an encoding's tokens and offsets, and that each id
// is its token's in tok's vocabulary.
func assertEncoding(t *testing.T, tok *Tokenizer, enc *Encoding, tokens []string, offsets [][2]int) {
	t.Helper()
	assert.Equal(t, tokens, enc.Tokens)
	assert.Equal(t, offsets, enc.Offsets)
	for i, s := range enc.Tokens {
		id, ok := tok.TokenToID(s)
		require.True(t, ok)
		assert.Equal(t, id, enc.IDs[i])
	}
}

// TestTokenizerBertBaseVocab checks ids and offsets recorded from HF's
// BertTokenizerFast on the bert-base-uncased vocabulary (the generated
// tokenizer directory: tokenizer.json, no tokenizer_config.json).
func TestTokenizerBertBaseVocab(t *testing.T) {
	tok := bertTokenizer(t)
	enc, err := tok.Encode("Hello, y’all! café costs €5 naïve İstanbul")
	require.NoError(t, err)
	assert.Equal(t, []int64{7592, 1010, 1061, 1521, 2035, 999, 7668, 5366, 1574, 2629, 15743, 9960}, enc.IDs)
	assert.Equal(t, [][2]int{{0, 5}, {5, 6}, {7, 8}, {8, 9}, {9, 12}, {12, 13}, {14, 18}, {19, 24}, {25, 26}, {26, 27}, {28, 33}, {34, 42}}, enc.Offsets)
	assert.Equal(t, int64(101), tok.CLS())
	assert.Equal(t, int64(102), tok.SEP())
	assert.Equal(t, int64(0), tok.PAD())
	assert.Equal(t, int64(100), tok.UNK())
	assert.Equal(t, 30522, tok.VocabSize())
	assert.Equal(t, 0, tok.ModelMaxLength(), "no tokenizer_config.json: no limit")
}

// TestLoadTokenizerFromVocab loads the fixture's model directory (vocab.txt +
// tokenizer_config.json, no tokenizer.json) and checks it tokenizes as HF's
// tokenizer.json for the same vocabulary does — tokenizer.json alone, in a
// directory of its own, so that its vocabulary is the one read.
func TestLoadTokenizerFromVocab(t *testing.T) {
	base := fixtureBase(t)
	require.NoFileExists(t, filepath.Join(base, TokenizerJSONFile), "the fixture's base must load from vocab.txt")
	b, err := os.ReadFile(filepath.Join(testutil.Tokenizer(t), TokenizerJSONFile))
	require.NoError(t, err)
	jsonOnly := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(jsonOnly, TokenizerJSONFile), b, 0o644))
	fromJSON, err := LoadTokenizer(jsonOnly)
	require.NoError(t, err)
	fromVocab, err := LoadTokenizer(base)
	require.NoError(t, err)
	assert.Equal(t, 128, fromVocab.ModelMaxLength())
	assert.Equal(t, fromJSON.VocabSize(), fromVocab.VocabSize())
	squad, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	for _, s := range append(tokenizerEdgeCases, qaTexts(squad.Examples[:30])...) {
		a, err := fromJSON.Encode(s)
		require.NoError(t, err)
		b, err := fromVocab.Encode(s)
		require.NoError(t, err)
		assert.Equal(t, a, b, "%q", s)
	}
}

func TestLoadTokenizerOptions(t *testing.T) {
	dir := t.TempDir()
	vocab := "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nCafé\ncafe\ncafé\n<s>\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, VocabFile), []byte(vocab), 0o644))
	write := func(cfg string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, TokenizerConfigFile), []byte(cfg), 0o644))
	}
	tests := []struct {
		cfg  string
		want string
	}{
		{`{}`, "cafe"},
		{`{"do_lower_case": false}`, "Café"},
		{`{"do_lower_case": true, "strip_accents": false}`, "café"},
		{`{"do_lower_case": false, "strip_accents": true}`, "[UNK]"}, // "Cafe" is not in the vocabulary
		{`{"model_max_length": 1000000000000000019884624838656, "cls_token": {"content": "<s>"}}`, "cafe"},
	}
	for _, tc := range tests {
		t.Run(tc.cfg, func(t *testing.T) {
			write(tc.cfg)
			tok, err := LoadTokenizer(dir)
			require.NoError(t, err)
			enc, err := tok.Encode("Café")
			require.NoError(t, err)
			assert.Equal(t, []string{tc.want}, enc.Tokens)
			assert.Equal(t, 0, tok.ModelMaxLength())
		})
	}
	write(`{"cls_token": {"content": "<s>"}}`)
	tok, err := LoadTokenizer(dir)
	require.NoError(t, err)
	assert.Equal(t, int64(8), tok.CLS())
}

func TestNewTokenizerErrors(t *testing.T) {
	base := map[string]int{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
	sparse := map[string]int{"x": 1 << 40}
	for k, v := range base {
		sparse[k] = v
	}
	_, err := NewTokenizer(sparse, DefaultTokenizerOptions())
	assert.ErrorContains(t, err, "must be dense")
	neg := map[string]int{"x": -1}
	for k, v := range base {
		neg[k] = v
	}
	_, err = NewTokenizer(neg, DefaultTokenizerOptions())
	assert.ErrorContains(t, err, "negative id -1")
	opts := DefaultTokenizerOptions()
	opts.MaxInputCharsPerWord = 0
	_, err = NewTokenizer(base, opts)
	assert.ErrorContains(t, err, "max_input_chars_per_word must be positive")
	opts = DefaultTokenizerOptions()
	opts.SepToken = "</s>"
	_, err = NewTokenizer(base, opts)
	assert.ErrorContains(t, err, `sep token "</s>" is not in the vocabulary`)
}

func TestLoadTokenizerErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"nothing", map[string]string{}, "vocab.txt"},
		{"empty vocab", map[string]string{VocabFile: ""}, "empty vocabulary"},
		{"no unk", map[string]string{VocabFile: "[PAD]\n[CLS]\n[SEP]\n"}, `unk token "[UNK]" is not in the vocabulary`},
		{"bad json", map[string]string{TokenizerJSONFile: "{\n  \"model\": ,\n}"}, "tokenizer.json: line 2, column 12"},
		{"unigram", map[string]string{TokenizerJSONFile: `{"model": {"type": "Unigram", "vocab": [["a", 0]]}}`}, `$.model.type is "Unigram"`},
		{"no normalizer", map[string]string{TokenizerJSONFile: `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`}, "$.normalizer must be a BertNormalizer"},
		{"bad config", map[string]string{VocabFile: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", TokenizerConfigFile: `{"do_lower_case": "yes"}`}, "tokenizer_config.json: $.do_lower_case"},
		{"bad special", map[string]string{VocabFile: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", TokenizerConfigFile: `{"sep_token": 3}`}, "$.sep_token: want a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
			}
			_, err := LoadTokenizer(dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
