package data

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handMerges are the merges of the hand-made byte-level vocabulary, in rank order.
var handMerges = [][2]string{
	{"Ġ", "c"}, {"a", "t"}, {"Ġc", "at"}, {"a", "a"}, {"â", "Ĥ"}, {"Ġ", "s"}, {"Ġs", "at"}, {"h", "e"}, {"T", "he"},
}

// handVocab is RoBERTa-shaped: <s> <pad> </s> <unk>, the 256 byte
// characters, the merged tokens, <mask>.
func handVocab() map[string]int {
	vocab := map[string]int{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
	for _, s := range byteChars {
		vocab[s] = len(vocab)
	}
	for _, m := range handMerges {
		vocab[m[0]+m[1]] = len(vocab)
	}
	vocab["<mask>"] = len(vocab)
	return vocab
}

func handRoberta(t testing.TB, added ...AddedToken) *Tokenizer {
	t.Helper()
	opts := DefaultRobertaOptions()
	opts.AddedTokens = added
	tok, err := NewRobertaTokenizer(handVocab(), handMerges, opts)
	require.NoError(t, err)
	return tok
}

func TestByteChars(t *testing.T) {
	seen := map[string]bool{}
	for b, s := range byteChars {
		require.Equal(t, 1, len([]rune(s)), "byte %#x", b)
		require.False(t, seen[s], "byte %#x: %q twice", b, s)
		seen[s] = true
	}
	assert.Equal(t, "Ġ", byteChars[' '])
	assert.Equal(t, "Ċ", byteChars['\n'])
	assert.Equal(t, "ĉ", byteChars['\t'])
	assert.Equal(t, "Ā", byteChars[0])
	assert.Equal(t, "ł", byteChars[0xA0])
	assert.Equal(t, "Ń", byteChars[0xAD])
	assert.Equal(t, "a", byteChars['a'])
	assert.Equal(t, "é", byteChars[0xE9])
	assert.Equal(t, "âĤ¬", bytesToChars("€"))
}

func TestSplitByteLevel(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a \n b", []string{"a", " \n", " b"}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"x   ", []string{"x", "   "}},
		{" ", []string{" "}},
		{"", nil},
		{"it's I'M 'sam", []string{"it", "'s", " I", "'", "M", " '", "sam"}},
		{"we'll they're you've I'd 'x", []string{"we", "'ll", " they", "'re", " you", "'ve", " I", "'d", " '", "x"}},
		{"$2,381.4 million", []string{"$", "2", ",", "381", ".", "4", " million"}},
		{"...'s", []string{"...'", "s"}},
		{"日本語 😀!", []string{"日本語", " 😀!"}},
		{"x\u00a0y\u3000 z", []string{"x", "\u00a0", "y", "\u3000", " z"}},
		{"Ⅳ² e\u0301", []string{"Ⅳ²", " e", "\u0301"}},
		{"a\t\tb", []string{"a", "\t", "\t", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			runes := []rune(tc.text)
			var got []string
			for _, w := range splitByteLevel(runes, nil) {
				got = append(got, string(runes[w[0]:w[1]]))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRobertaHandCases(t *testing.T) {
	tests := []struct {
		text    string
		added   []AddedToken
		tokens  []string
		offsets [][2]int
	}{
		// merges by rank: "Ġ c", "a t", then "Ġc at"; the leading space is not in the offsets
		{"The cat", nil, []string{"The", "Ġcat"}, [][2]int{{0, 3}, {4, 7}}},
		// equal ranks merge leftmost first
		{"aaa", nil, []string{"aa", "a"}, [][2]int{{0, 2}, {2, 3}}},
		{"aaaaa", nil, []string{"aa", "aa", "a"}, [][2]int{{0, 2}, {2, 4}, {4, 5}}},
		// € is three bytes: both tokens span the whole character (code points)
		{"€5 sat", nil, []string{"âĤ", "¬", "5", "Ġsat"}, [][2]int{{0, 1}, {0, 1}, {1, 2}, {3, 6}}},
		{"café", nil, []string{"c", "a", "f", "Ã", "©"}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {3, 4}}},
		// a token of spaces alone has an empty span where its spaces end
		{"a  b\n", nil, []string{"a", "Ġ", "Ġ", "b", "Ċ"}, [][2]int{{0, 1}, {2, 2}, {3, 3}, {3, 4}, {4, 5}}},
		{"it's", nil, []string{"i", "t", "'", "s"}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{"x <mask>y</s>", nil, []string{"x", "Ġ", "<mask>", "y", "</s>"}, [][2]int{{0, 1}, {2, 2}, {2, 8}, {8, 9}, {9, 13}}},
		{"x <mask> y", []AddedToken{{Content: "<mask>", LStrip: true}}, []string{"x", "<mask>", "Ġ", "y"}, [][2]int{{0, 1}, {2, 8}, {9, 9}, {9, 10}}},
		{"x <mask> y", []AddedToken{{Content: "<mask>", RStrip: true}}, []string{"x", "Ġ", "<mask>", "y"}, [][2]int{{0, 1}, {2, 2}, {2, 8}, {9, 10}}},
		{"😀", nil, []string{"ð", "Ł", "ĺ", "Ģ"}, [][2]int{{0, 1}, {0, 1}, {0, 1}, {0, 1}}},
		{"", nil, []string{}, [][2]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			tok := handRoberta(t, tc.added...)
			enc, err := tok.Encode(tc.text)
			require.NoError(t, err)
			assertEncoding(t, tok, enc, tc.tokens, tc.offsets)
		})
	}
}

func TestRobertaTokenizerAccessors(t *testing.T) {
	tok := handRoberta(t)
	assert.Equal(t, ByteLevelBPE, tok.Kind())
	assert.False(t, tok.TokenTypes())
	assert.Equal(t, 4, tok.PairSpecialTokens())
	assert.Equal(t, int64(0), tok.CLS())
	assert.Equal(t, int64(2), tok.SEP())
	assert.Equal(t, int64(1), tok.PAD())
	assert.Equal(t, int64(3), tok.UNK())
	assert.Equal(t, len(handVocab()), tok.VocabSize())
	bert := tinyTokenizer(t)
	assert.Equal(t, WordPiece, bert.Kind())
	assert.True(t, bert.TokenTypes())
	assert.Equal(t, 3, bert.PairSpecialTokens())
}

func TestNewRobertaTokenizerErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]int, *[][2]string, *RobertaOptions)
		errMsg string
	}{
		{"merge part missing", func(_ map[string]int, m *[][2]string, _ *RobertaOptions) { *m = append(*m, [2]string{"zz", "a"}) },
			`merge 10 ("zz" "a"): a part is not in the vocabulary`},
		{"merged token missing", func(_ map[string]int, m *[][2]string, _ *RobertaOptions) { *m = append(*m, [2]string{"a", "b"}) },
			`"ab" is not in the vocabulary`},
		{"no sep", func(_ map[string]int, _ *[][2]string, o *RobertaOptions) { o.SepToken = "[SEP]" },
			`sep token "[SEP]" is not in the vocabulary`},
		{"not byte-level", func(v map[string]int, _ *[][2]string, _ *RobertaOptions) { delete(v, "Ċ") },
			`byte 0x0a ("Ċ") is not in the vocabulary`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vocab, merges, opts := handVocab(), append([][2]string(nil), handMerges...), DefaultRobertaOptions()
			tc.edit(vocab, &merges, &opts)
			_, err := NewRobertaTokenizer(vocab, merges, opts)
			assert.ErrorContains(t, err, tc.errMsg)
		})
	}
}

// TestFeaturizeRobertaHandCase: <s> q </s></s> c </s>, token types all 0,
// the labels and windows of the BERT hand case.
func TestFeaturizeRobertaHandCase(t *testing.T) {
	tok := handRoberta(t)
	ex := handExample("The cat sat on aaaa.", "on", 12)
	// question: c at ? (3); context: The Ġcat Ġsat Ġ o n Ġ aa aa . (10)
	// room 11-3-4 = 4, stride 1: windows [0,4) [3,7) [6,10)
	feats, rep := featurizeN(t, tok, []Example{ex}, windowOptions(11, 1), 3)
	f := feats[1]
	id := func(s string) int64 {
		id, ok := tok.TokenToID(s)
		require.True(t, ok, s)
		return id
	}
	assert.Equal(t, []int64{0, id("c"), id("at"), id("?"), 2, 2, id("Ġ"), id("o"), id("n"), id("Ġ"), 2}, f.InputIDs)
	assert.Equal(t, make([]int64, 11), f.TokenTypeIDs)
	assert.Equal(t, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, f.AttentionMask)
	assert.Equal(t, [][2]int{NoOffset, NoOffset, NoOffset, NoOffset, NoOffset, NoOffset, {12, 12}, {12, 13}, {13, 14}, {15, 15}, NoOffset}, f.Offsets)
	assert.Equal(t, [2]int{7, 8}, [2]int{f.StartPosition, f.EndPosition}, "o n; the empty Ġ before o is not the start")
	assert.Equal(t, &FeatureReport{Mode: ModeWindows, MaxSeqLength: 11, DocStride: 1, Examples: 1, Windows: 3, Features: 3,
		AnswerWindows: 1, NegativeWindows: 2, AnswersInWindow: 1}, rep)
	assert.Equal(t, []int64{1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, specialTokensMask(tok, 3, 11))

	_, _, err := Featurize(tok, []Example{ex}, windowOptions(10, 6))
	assert.ErrorContains(t, err, "doc_stride 6 leaves no room: it must be smaller than the window left for the context (max_seq_length 10 minus the question and 4 special tokens)")
}

// writeFiles writes name → content into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return dir
}

// handTokenizerJSON is a RobertaTokenizerFast tokenizer.json for the hand
// vocabulary, as a map to edit.
func handTokenizerJSON() map[string]any {
	var merges []any
	for _, m := range handMerges {
		merges = append(merges, []string{m[0], m[1]})
	}
	vocab := handVocab()
	return map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 0, "content": "<s>", "special": true},
			map[string]any{"id": 2, "content": "</s>", "special": true},
			map[string]any{"id": vocab["<mask>"], "content": "<mask>", "lstrip": true, "special": true},
		},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 2}, "cls": []any{"<s>", 0}, "trim_offsets": true, "add_prefix_space": false},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": merges},
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func handMergesTxt() string {
	var b strings.Builder
	b.WriteString("#version: 0.2\n")
	for _, m := range handMerges {
		b.WriteString(m[0] + " " + m[1] + "\n")
	}
	return b.String()
}

// TestLoadRobertaTokenizer: the three layouts load into the same tokenizer,
// and tokenizer.json's and tokenizer_config.json's settings are read.
func TestLoadRobertaTokenizer(t *testing.T) {
	vocabJSON := jsonString(t, handVocab())
	want := handRoberta(t)
	legacy := handTokenizerJSON()
	var lines []string
	for _, m := range handMerges {
		lines = append(lines, m[0]+" "+m[1])
	}
	legacy["model"].(map[string]any)["merges"] = lines
	tests := []struct {
		name   string
		files  map[string]string
		lstrip bool // <mask> swallows the space before it
		maxLen int
	}{
		{"vocab.json + merges.txt", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt()}, false, 0},
		{"tokenizer.json", map[string]string{TokenizerJSONFile: jsonString(t, handTokenizerJSON())}, true, 0},
		{"tokenizer.json with merges as strings", map[string]string{TokenizerJSONFile: jsonString(t, legacy)}, true, 0},
		{"with tokenizer_config.json", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(),
			TokenizerConfigFile: `{"tokenizer_class": "RobertaTokenizer", "model_max_length": 512, "add_prefix_space": false, "trim_offsets": true,
			"added_tokens_decoder": {"` + jsonString(t, handVocab()["<mask>"]) + `": {"content": "<mask>", "lstrip": true, "special": true}}}`}, true, 512},
		{"vocab.txt too, tokenizer_class says RoBERTa", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(),
			VocabFile: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", TokenizerConfigFile: `{"tokenizer_class": "RobertaTokenizerFast"}`}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := LoadTokenizer(writeFiles(t, tc.files))
			require.NoError(t, err)
			assert.Equal(t, ByteLevelBPE, tok.Kind())
			assert.Equal(t, tc.maxLen, tok.ModelMaxLength())
			assert.Equal(t, want.VocabSize(), tok.VocabSize())
			for _, s := range []string{"The cat sat on aaaaa.", "€5 café 😀", "a  b\n\nc  "} {
				a, err := want.Encode(s)
				require.NoError(t, err)
				b, err := tok.Encode(s)
				require.NoError(t, err)
				assert.Equal(t, a, b, "%q", s)
			}
			enc, err := tok.Encode("x <mask>")
			require.NoError(t, err)
			if tc.lstrip {
				assert.Equal(t, []string{"x", "<mask>"}, enc.Tokens)
			} else {
				assert.Equal(t, []string{"x", "Ġ", "<mask>"}, enc.Tokens)
			}
		})
	}
	// both vocabularies and no tokenizer_class: BERT, as before
	tok, err := LoadTokenizer(writeFiles(t, map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(), VocabFile: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n"}))
	require.NoError(t, err)
	assert.Equal(t, WordPiece, tok.Kind())
}

func TestLoadRobertaTokenizerErrors(t *testing.T) {
	vocabJSON := jsonString(t, handVocab())
	edited := func(edit func(j map[string]any)) string {
		j := handTokenizerJSON()
		edit(j)
		return jsonString(t, j)
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no merges.txt", map[string]string{VocabJSONFile: vocabJSON}, "merges.txt: no such file"},
		{"bad merge line", map[string]string{VocabJSONFile: vocabJSON, MergesFile: "#version: 0.2\nĠ c\na t x\n"}, `merges.txt:3: "a t x" is not two tokens`},
		{"bad vocab.json", map[string]string{VocabJSONFile: "{\n\"a\": x}", MergesFile: ""}, "vocab.json: line 2, column 6"},
		{"class says BERT", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(), TokenizerConfigFile: `{"tokenizer_class": "BertTokenizer"}`},
			"$.tokenizer_class is \"BertTokenizer\", a wordpiece tokenizer, but the tokenizer files are byte-level-bpe"},
		{"config add_prefix_space", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(), TokenizerConfigFile: `{"add_prefix_space": true}`},
			"$.add_prefix_space is true; only RoBERTa's false is supported"},
		{"config trim_offsets", map[string]string{VocabJSONFile: vocabJSON, MergesFile: handMergesTxt(), TokenizerConfigFile: `{"trim_offsets": false}`},
			"$.trim_offsets is false; only RoBERTa's true is supported"},
		{"normalizer", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["normalizer"] = map[string]any{"type": "NFC"} })},
			`$.normalizer is {"type":"NFC"}`},
		{"pre-tokenizer", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["pre_tokenizer"] = map[string]any{"type": "Whitespace"} })},
			"$.pre_tokenizer must be a ByteLevel pre-tokenizer"},
		{"add_prefix_space", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) {
			j["pre_tokenizer"].(map[string]any)["add_prefix_space"] = true
		})}, "$.pre_tokenizer.add_prefix_space is true"},
		{"post-processor", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["post_processor"] = map[string]any{"type": "ByteLevel"} })},
			"$.post_processor must be a RobertaProcessing"},
		{"trim_offsets", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) {
			j["post_processor"].(map[string]any)["trim_offsets"] = false
		})}, "$.post_processor.trim_offsets is false"},
		{"sep id", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) {
			j["post_processor"].(map[string]any)["sep"] = []any{"</s>", 7}
		})}, `$.post_processor.sep is ["</s>", 7], not a token of the vocabulary with that id`},
		{"dropout", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["model"].(map[string]any)["dropout"] = 0.1 })},
			"$.model.dropout is 0.1"},
		{"suffix", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["model"].(map[string]any)["end_of_word_suffix"] = "</w>" })},
			"end_of_word_suffix"},
		{"merges", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) { j["model"].(map[string]any)["merges"] = []any{"Ġ c d"} })},
			`$.model.merges: merge 1 ("Ġ c d") is not two tokens separated by a space`},
		{"single_word", map[string]string{TokenizerJSONFile: edited(func(j map[string]any) {
			j["added_tokens"] = []any{map[string]any{"id": 0, "content": "<s>", "single_word": true}}
		})}, `"<s>" has single_word`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadTokenizer(writeFiles(t, tc.files))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// charBytes maps a byte-level character back to its byte.
var charBytes = func() map[rune]byte {
	m := map[rune]byte{}
	for b, s := range byteChars {
		m[[]rune(s)[0]] = byte(b)
	}
	return m
}()

// FuzzRobertaEncode: never panics; the byte-level tokens spell the text's
// bytes exactly (invalid UTF-8 reads as U+FFFD, as Go's []rune does),
// offsets lie inside the text in order (empty only for tokens of spaces),
// and ids match tokens.
func FuzzRobertaEncode(f *testing.F) {
	tok := handRoberta(f)
	for _, s := range append(append([]string(nil), robertaEdgeCases...), tokenizerEdgeCases...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		enc, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		n := utf8.RuneCountInString(text)
		var spelled []byte
		prev := 0
		for i, o := range enc.Offsets {
			if o[0] < prev || o[1] < o[0] || o[1] > n {
				t.Fatalf("token %d %q has offsets %v in a text of %d code points (previous start %d)", i, enc.Tokens[i], o, n, prev)
			}
			if o[1] == o[0] && strings.Trim(enc.Tokens[i], bpeSpace) != "" {
				t.Fatalf("token %d %q has an empty span %v", i, enc.Tokens[i], o)
			}
			prev = o[0]
			if id, ok := tok.TokenToID(enc.Tokens[i]); !ok || id != enc.IDs[i] {
				t.Fatalf("token %q has id %d", enc.Tokens[i], enc.IDs[i])
			}
			for _, r := range enc.Tokens[i] {
				spelled = append(spelled, charBytes[r])
			}
		}
		if want := string([]rune(text)); string(spelled) != want {
			t.Fatalf("tokens %q spell %q, not %q", enc.Tokens, spelled, want)
		}
	})
}

// TestRobertaEncodeConcurrently: the word cache is shared; encodings from
// several goroutines equal the serial ones (run with -race).
func TestRobertaEncodeConcurrently(t *testing.T) {
	tok := handRoberta(t)
	texts := append(append([]string(nil), robertaEdgeCases...), tokenizerEdgeCases...)
	want := make([]*Encoding, len(texts))
	for i, s := range texts {
		var err error
		want[i], err = handRoberta(t).Encode(s)
		require.NoError(t, err)
	}
	// t.Error and t.Errorf may be called from other goroutines.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range texts {
				enc, err := tok.Encode(s)
				switch {
				case err != nil:
					t.Error(err)
				case !assert.ObjectsAreEqual(want[i], enc):
					t.Errorf("%q: %v, want %v", s, enc.Tokens, want[i].Tokens)
				}
			}
		}()
	}
	wg.Wait()
}

func TestHasTokenizerFiles(t *testing.T) {
	tests := []struct {
		files []string
		want  bool
	}{
		{nil, false},
		{[]string{TokenizerConfigFile, "special_tokens_map.json"}, false},
		{[]string{TokenizerJSONFile}, true},
		{[]string{VocabFile}, true},
		{[]string{VocabJSONFile}, false},
		{[]string{VocabJSONFile, MergesFile}, true},
	}
	for _, tc := range tests {
		files := map[string]string{}
		for _, f := range tc.files {
			files[f] = "{}"
			assert.Contains(t, TokenizerFiles, f)
		}
		assert.Equal(t, tc.want, HasTokenizerFiles(writeFiles(t, files)), "%v", tc.files)
	}
}
