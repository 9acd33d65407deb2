package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// robertaEdgeCases exercise the byte-level split and the offset trimming:
// runs and kinds of whitespace, contractions, digits and punctuation, letters
// and numbers beyond ASCII, characters split across tokens, special tokens
// in the text.
var robertaEdgeCases = []string{
	"a  b\n\nc  ", "  leading and trailing  ", "\n", " ", "\t\ttabs\t", "a \n b\r\nc",
	"it's 'S 's 'sam we'll they're I'd 'x ...'s",
	"$2,381.4 million (€1.2bn) 24.6% 1,000,000 3½ ² Ⅳ ١٢٣ ๕",
	"Beyoncé’s café — naïve İstanbul ǅ Σ ς Zürich São Paulo",
	"日本語のテキスト 中文 한국어 😀🥰 👩‍👩‍👧",
	"x\u00a0y\u2009z\u3000w\u2028v\u0085u",
	"e\u0301 a\u0300\u0301b \u200bzero\ufeffwidth",
	"<s>x</s> <mask> y<mask>z <pad> <unk>",
	"supercalifragilisticexpialidocious-antidisestablishmentarianism_x",
}

// robertaDirs lays out the generated tokenizer's files as HF models ship
// them: vocab.json + merges.txt alone; tokenizer.json alone; everything
// save_pretrained writes; tokenizer.json with <mask> lstrip (as the hub's
// roberta-base has) and merges as "a b" strings (tokenizers < 0.20);
// vocab.json + merges.txt + a tokenizer_config.json with model_max_length and
// added_tokens_decoder (<mask> lstrip).
func robertaDirs(t *testing.T) map[string]string {
	t.Helper()
	src := robertaBPEDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(src, name))
		require.NoError(t, err)
		return b
	}
	dir := func(files map[string][]byte) string {
		d := t.TempDir()
		for name, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(d, name), b, 0o644))
		}
		return d
	}
	var tj map[string]any
	require.NoError(t, json.Unmarshal(read(TokenizerJSONFile), &tj))
	model := tj["model"].(map[string]any)
	var lines []string
	for _, m := range model["merges"].([]any) {
		p := m.([]any)
		lines = append(lines, p[0].(string)+" "+p[1].(string))
	}
	model["merges"] = lines
	maskID := -1
	for _, a := range tj["added_tokens"].([]any) {
		if a := a.(map[string]any); a["content"] == "<mask>" {
			a["lstrip"] = true
			maskID = int(a["id"].(float64))
		}
	}
	require.GreaterOrEqual(t, maskID, 0)
	legacy, err := json.Marshal(tj)
	require.NoError(t, err)
	cfg := fmt.Sprintf(`{"tokenizer_class": "RobertaTokenizer", "model_max_length": 512, "added_tokens_decoder": {"%d": {"content": "<mask>", "lstrip": true, "rstrip": false, "normalized": false, "single_word": false, "special": true}}}`, maskID)
	return map[string]string{
		"vocab.json+merges.txt":         dir(map[string][]byte{VocabJSONFile: read(VocabJSONFile), MergesFile: read(MergesFile)}),
		"tokenizer.json":                dir(map[string][]byte{TokenizerJSONFile: read(TokenizerJSONFile)}),
		"save_pretrained":               src,
		"tokenizer.json lstrip, legacy": dir(map[string][]byte{TokenizerJSONFile: legacy}),
		"vocab.json+merges.txt+config":  dir(map[string][]byte{VocabJSONFile: read(VocabJSONFile), MergesFile: read(MergesFile), TokenizerConfigFile: []byte(cfg)}),
	}
}

// TestRobertaTokenizerMatchesHF compares ids and code-point offsets with HF's
// RobertaTokenizerFast, on the byte-level BPE the project trains on its
// samples, in each layout of robertaDirs: every question and context of the
// committed SQuAD sample, the joined context of examples/sample-qa.txt and
// the edge cases (non-ASCII, CJK, emoji, whitespace, special tokens). (roberta-base's own
// vocabulary on SQuAD 2.0: TestRealDataRobertaMatchesHF, make test-data.)
func TestRobertaTokenizerMatchesHF(t *testing.T) {
	squad, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	texts := append(qaTexts(squad.Examples, joinedTest(t, sampleQA(t))), tokenizerEdgeCases...)
	texts = append(texts, robertaEdgeCases...)
	for name, dir := range robertaDirs(t) {
		t.Run(name, func(t *testing.T) {
			tok, err := LoadTokenizer(dir)
			require.NoError(t, err)
			require.Equal(t, ByteLevelBPE, tok.Kind())
			tokenizerMatchesHF(t, tok, dir, texts)
		})
	}
}

// nonASCIIExamples are long contexts of non-ASCII text (CJK, accents, €,
// emoji, odd whitespace) that make several small windows, with questions of
// the same kind.
func nonASCIIExamples() []Example {
	var exs []Example
	for i, s := range append(append([]string(nil), robertaEdgeCases...), tokenizerEdgeCases...) {
		r := []rune(s)
		exs = append(exs, Example{
			ID:       fmt.Sprintf("nonascii-%d", i),
			Question: "Kaffee in €? 日本 " + string(r[:min(len(r), 8)]),
			Context:  strings.Repeat(s+" Le café coûte 2,50 € à Zürich. ", 6),
		})
	}
	return exs
}

// TestRobertaFeaturesMatchHFWindows compares every window (input_ids, no
// token type ids, the special tokens <s> q </s></s> c </s>, context offsets)
// with HF's overflowing truncation on the trained byte-level BPE: the SQuAD
// sample at 384/128 and 64/16, the joined context of examples/sample-qa.txt
// at 384/128, and long non-ASCII contexts at 64/16.
func TestRobertaFeaturesMatchHFWindows(t *testing.T) {
	dir := robertaBPEDir(t)
	tok, err := LoadTokenizer(dir)
	require.NoError(t, err)
	squad, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	joined := joinedTest(t, sampleQA(t))
	runs := []windowRun{
		{squad.Examples, DefaultFeatureOptions()},
		{squad.Examples, smallWindows},
		{joined, DefaultFeatureOptions()},
		{nonASCIIExamples(), smallWindows},
	}
	examples := 0
	for _, r := range runs {
		examples += len(r.examples)
	}
	windows := featuresMatchHFWindows(t, tok, dir, runs)
	assert.Greater(t, windows, examples+len(joined), "long contexts make several windows")
}

// TestFeaturizeSQuADRoberta: the window and label checks over the SQuAD
// sample with the trained byte-level BPE.
func TestFeaturizeSQuADRoberta(t *testing.T) {
	tok, err := LoadTokenizer(robertaBPEDir(t))
	require.NoError(t, err)
	r, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	featurizeSQuAD(t, tok, r.Examples)
}
