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
)

// runHFRef sends items to scripts/ref/hf_tokenize.py (HF's BertTokenizerFast
// in the reference environment) in one call and returns its output lines.
func runHFRef(t *testing.T, items []any) [][]byte {
	t.Helper()
	py := refPython(t)
	script := filepath.Join(repoRoot(t), "scripts", "ref", "hf_tokenize.py")
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, it := range items {
		require.NoError(t, enc.Encode(it))
	}
	cmd := exec.Command(py, script, filepath.Join(sharedDir(t), "tokenizer"))
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

// TestTokenizerMatchesHF compares ids and code-point offsets with HF's
// BertTokenizerFast on every question and context of the shared SQuAD file,
// the TAT-QA texts, and edge cases.
func TestTokenizerMatchesHF(t *testing.T) {
	tok := sharedTokenizer(t)
	squad, err := ReadFile(sharedFile(t, "data/squad-v1.1-dev-part1.json"), FormatSQuAD)
	require.NoError(t, err)
	require.Len(t, squad.Examples, 4961)
	tatqa, err := ReadFile(sharedFile(t, "data/tatqa-dev-textspan.squad.json"), FormatSQuAD)
	require.NoError(t, err)
	var texts []string
	seen := map[string]bool{}
	for _, ex := range append(squad.Examples, tatqa.Examples...) {
		texts = append(texts, ex.Question)
		if !seen[ex.Context] {
			seen[ex.Context] = true
			texts = append(texts, ex.Context)
		}
	}
	texts = append(texts, tokenizerEdgeCases...)
	items := make([]any, len(texts))
	for i, s := range texts {
		items[i] = s
	}
	bad := 0
	for i, line := range runHFRef(t, items) {
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
}

// TestFeaturesMatchHFWindows compares every window (input_ids,
// token_type_ids, context offsets) with HF's overflowing truncation, as
// run_qa calls it, for all SQuAD questions (and a quarter of them with small
// windows) and the joined TAT-QA context.
func TestFeaturesMatchHFWindows(t *testing.T) {
	tok := sharedTokenizer(t)
	squad, err := ReadFile(sharedFile(t, "data/squad-v1.1-dev-part1.json"), FormatSQuAD)
	require.NoError(t, err)
	opts := DefaultPrepareOptions()
	opts.Input, opts.OutDir = sharedFile(t, "data/tatqa-dev-qa.txt"), t.TempDir()
	_, err = Prepare(context.Background(), opts)
	require.NoError(t, err)
	joined, err := ReadExamplesJSONL(filepath.Join(opts.OutDir, TestFile))
	require.NoError(t, err)

	var sample []Example // every 4th question for the small windows, to keep the run short
	for i := 0; i < len(squad.Examples); i += 4 {
		sample = append(sample, squad.Examples[i])
	}
	type run struct {
		examples []Example
		opts     FeatureOptions
	}
	runs := []run{
		{squad.Examples, DefaultFeatureOptions()},
		{sample, FeatureOptions{MaxSeqLength: 64, DocStride: 16, Mode: ModeWindows, NegativeFraction: 1}},
		{joined, DefaultFeatureOptions()},
	}
	var items []any
	for _, r := range runs {
		for _, ex := range r.examples {
			items = append(items, map[string]any{"question": ex.Question, "context": ex.Context,
				"max_length": r.opts.MaxSeqLength, "stride": r.opts.DocStride})
		}
	}
	lines := runHFRef(t, items)
	k := 0
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
					InputIDs     []int64   `json:"input_ids"`
					TokenTypeIDs []int64   `json:"token_type_ids"`
					Offsets      []*[2]int `json:"offsets"`
				} `json:"windows"`
			}
			require.NoError(t, json.Unmarshal(lines[k], &ref))
			k++
			got := byEx[i]
			require.Len(t, got, len(ref.Windows), "windows of %s (max %d, stride %d)", ex.ID, r.opts.MaxSeqLength, r.opts.DocStride)
			for w, rw := range ref.Windows {
				require.Equal(t, rw.InputIDs, got[w].InputIDs, "%s window %d", ex.ID, w)
				require.Equal(t, rw.TokenTypeIDs, got[w].TokenTypeIDs, "%s window %d", ex.ID, w)
				offs := make([][2]int, len(rw.Offsets))
				for j, o := range rw.Offsets {
					offs[j] = NoOffset
					if o != nil {
						offs[j] = *o
					}
				}
				require.Equal(t, offs, got[w].Offsets, "%s window %d", ex.ID, w)
			}
		}
	}
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
