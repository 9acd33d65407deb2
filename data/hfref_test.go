package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// runHFRef sends items to scripts/ref/hf_tokenize.py (HF's BertTokenizerFast
// or RobertaTokenizerFast on the tokenizer directory dir, in the reference
// environment) in one call and returns its output lines.
func runHFRef(t *testing.T, dir string, items []any) [][]byte {
	t.Helper()
	py := refPython(t)
	script := filepath.Join(repoRoot(t), "scripts", "ref", "hf_tokenize.py")
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, it := range items {
		require.NoError(t, enc.Encode(it))
	}
	cmd := exec.Command(py, script, dir)
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), "hf_tokenize.py: %s", stderr.String())
	var lines [][]byte
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<28)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	require.NoError(t, sc.Err())
	require.Len(t, lines, len(items), "one reference line per item")
	return lines
}

// qaTexts lists every question and every distinct context of the examples.
func qaTexts(sets ...[]Example) []string {
	var texts []string
	seen := map[string]bool{}
	for _, exs := range sets {
		for _, ex := range exs {
			texts = append(texts, ex.Question)
			if !seen[ex.Context] {
				seen[ex.Context] = true
				texts = append(texts, ex.Context)
			}
		}
	}
	return texts
}

// tokenizerMatchesHF compares the ids and code-point offsets of every text
// with HF's fast tokenizer (BertTokenizerFast or RobertaTokenizerFast) loaded
// from dir.
func tokenizerMatchesHF(t *testing.T, tok *Tokenizer, dir string, texts []string) {
	t.Helper()
	items := make([]any, len(texts))
	for i, s := range texts {
		items[i] = s
	}
	bad := 0
	for i, line := range runHFRef(t, dir, items) {
		var ref struct {
			IDs     []int64  `json:"ids"`
			Offsets [][2]int `json:"offsets"`
		}
		require.NoError(t, json.Unmarshal(line, &ref))
		got, err := tok.Encode(texts[i])
		require.NoError(t, err)
		if !assert.Equal(t, ref.IDs, got.IDs, "ids of %q", clip(texts[i], 80)) ||
			!assert.Equal(t, ref.Offsets, got.Offsets, "offsets of %q", clip(texts[i], 80)) {
			bad++
		}
		require.Less(t, bad, 5, "too many mismatches")
	}
	t.Logf("%d texts tokenized as HF does", len(texts))
}

// windowRun is a set of examples cut into windows with some options.
type windowRun struct {
	examples []Example
	opts     FeatureOptions
}

// smallWindows cut a context into many windows.
var smallWindows = FeatureOptions{MaxSeqLength: 64, DocStride: 16, Mode: ModeWindows, NegativeFraction: 1}

// featuresMatchHFWindows compares every window (input_ids, token_type_ids —
// all 0 where HF gives none —, the special tokens, context offsets) with HF's
// overflowing truncation, as run_qa calls it, with the tokenizer in dir.
// It returns the number of windows.
func featuresMatchHFWindows(t *testing.T, tok *Tokenizer, dir string, runs []windowRun) int {
	t.Helper()
	var items []any
	for _, r := range runs {
		for _, ex := range r.examples {
			items = append(items, map[string]any{"question": ex.Question, "context": ex.Context,
				"max_length": r.opts.MaxSeqLength, "stride": r.opts.DocStride})
		}
	}
	lines := runHFRef(t, dir, items)
	k, windows := 0, 0
	for _, r := range runs {
		feats, _, err := Featurize(tok, r.examples, r.opts)
		require.NoError(t, err)
		byEx := map[int][]Feature{}
		for _, f := range feats {
			byEx[f.ExampleIndex] = append(byEx[f.ExampleIndex], f)
		}
		for i, ex := range r.examples {
			var ref struct {
				Windows []struct {
					InputIDs          []int64   `json:"input_ids"`
					TokenTypeIDs      []int64   `json:"token_type_ids"`
					SpecialTokensMask []int64   `json:"special_tokens_mask"`
					Offsets           []*[2]int `json:"offsets"`
				} `json:"windows"`
			}
			require.NoError(t, json.Unmarshal(lines[k], &ref))
			k++
			got := byEx[i]
			require.Len(t, got, len(ref.Windows), "windows of %s (max %d, stride %d)", ex.ID, r.opts.MaxSeqLength, r.opts.DocStride)
			q, err := tok.Encode(ex.Question)
			require.NoError(t, err)
			for w, rw := range ref.Windows {
				require.Equal(t, rw.InputIDs, got[w].InputIDs, "%s window %d", ex.ID, w)
				if rw.TokenTypeIDs == nil {
					require.False(t, tok.TokenTypes(), "HF gives no token type ids")
					rw.TokenTypeIDs = make([]int64, len(rw.InputIDs))
				}
				require.Equal(t, rw.TokenTypeIDs, got[w].TokenTypeIDs, "%s window %d", ex.ID, w)
				require.Equal(t, rw.SpecialTokensMask, specialTokensMask(tok, len(q.IDs), len(got[w].InputIDs)), "%s window %d", ex.ID, w)
				offs := make([][2]int, len(rw.Offsets))
				for j, o := range rw.Offsets {
					offs[j] = NoOffset
					if o != nil {
						offs[j] = *o
					}
				}
				require.Equal(t, offs, got[w].Offsets, "%s window %d", ex.ID, w)
			}
			windows += len(ref.Windows)
		}
	}
	t.Logf("%d windows of %d questions as HF cuts them", windows, len(items))
	return windows
}

// specialTokensMask marks the special tokens of a feature of n tokens whose
// question has nq tokens: [CLS] q [SEP] c [SEP], or <s> q </s></s> c </s>.
func specialTokensMask(tok *Tokenizer, nq, n int) []int64 {
	mask := make([]int64, n)
	mask[0], mask[n-1] = 1, 1
	for k := nq + 1; k < nq+tok.PairSpecialTokens()-1; k++ {
		mask[k] = 1
	}
	return mask
}

// joinedTest prepares a qa-text file as the reference recipe does (all answers
// joined into one context) and returns its test split.
func joinedTest(t *testing.T, input string) []Example {
	t.Helper()
	opts := DefaultPrepareOptions()
	opts.Input, opts.OutDir = input, t.TempDir()
	_, err := Prepare(context.Background(), opts)
	require.NoError(t, err)
	test, err := ReadExamplesJSONL(filepath.Join(opts.OutDir, TestFile))
	require.NoError(t, err)
	return test
}

// TestTokenizerMatchesHF compares ids and code-point offsets with HF's
// BertTokenizerFast on every question and context of the committed SQuAD
// sample, the joined context of examples/sample-qa.txt and edge cases. (The
// SQuAD and TAT-QA dev sets: TestRealDataTokenizerMatchesHF, make test-data.)
func TestTokenizerMatchesHF(t *testing.T) {
	tok := bertTokenizer(t)
	squad, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	texts := append(qaTexts(squad.Examples, joinedTest(t, sampleQA(t))), tokenizerEdgeCases...)
	tokenizerMatchesHF(t, tok, testutil.Tokenizer(t), texts)
}

// TestFeaturesMatchHFWindows compares every window with HF's overflowing
// truncation for the SQuAD sample's questions (the reference sizes, and small
// windows) and the joined context of examples/sample-qa.txt.
func TestFeaturesMatchHFWindows(t *testing.T) {
	tok := bertTokenizer(t)
	squad, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	featuresMatchHFWindows(t, tok, testutil.Tokenizer(t), []windowRun{
		{squad.Examples, DefaultFeatureOptions()},
		{squad.Examples, smallWindows},
		{joinedTest(t, sampleQA(t)), DefaultFeatureOptions()},
	})
}

// tokenizerEdgeCases exercise the normalizer corners: accents, CJK (and the
// 0x2B820 range HF does not treat as CJK), control and format characters,
// private use, added tokens in the text, long words, NFD expansions.
var tokenizerEdgeCases = []string{
	"Beyoncé’s €5 café — naïve İstanbul ǅ Σ ς",
	"a\U0002B830b a\U0002B920b a\u4e00b 日本語",
	"x\u200bb x\u00adb a\u0085b \x1cx\x1d \ue000p \U000E0001q a\u0378b",
	"x[MASK]y [mask] [SEP] [CLS][UNK]",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bb",
	"한국어 ﬁne ﬀ Ⅳ x\u0300\u0301y \u00a0nbsp\u2009thin\u3000wide\u2028ls",
	"😀 🥰 \u0000nul \ufffd rep \t\ttab\r\nnl",
	"",
	"   ",
}
