package data

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWindowRanges(t *testing.T) {
	tests := []struct {
		n, room, stride int
		want            [][2]int
	}{
		{0, 5, 2, [][2]int{{0, 0}}},
		{5, 5, 2, [][2]int{{0, 5}}},
		{6, 5, 2, [][2]int{{0, 5}, {3, 6}}},
		{8, 5, 2, [][2]int{{0, 5}, {3, 8}}},
		{9, 5, 2, [][2]int{{0, 5}, {3, 8}, {6, 9}}},
		{10, 4, 0, [][2]int{{0, 4}, {4, 8}, {8, 10}}},
		{7, 4, 3, [][2]int{{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
	}
	for _, tc := range tests {
		got, err := windowRanges(tc.n, tc.room, tc.stride)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "n=%d room=%d stride=%d", tc.n, tc.room, tc.stride)
	}
	_, err := windowRanges(10, 4, 4)
	assert.ErrorContains(t, err, "doc_stride 4 leaves no room")
	_, err = windowRanges(10, 0, 0)
	assert.ErrorContains(t, err, "question leaves no room")
}

func TestLabelWindow(t *testing.T) {
	// context "the cat sat on the mat" as tokens at feature indices 3..8
	offsets := [][2]int{NoOffset, NoOffset, NoOffset, {0, 3}, {4, 7}, {8, 11}, {12, 14}, {15, 18}, {19, 22}, NoOffset}
	tests := []struct {
		name       string
		sc, ec     int
		start, end int
	}{
		{"one token", 4, 7, 4, 4},
		{"span", 4, 14, 4, 6},
		{"first token", 0, 3, 3, 3},
		{"last token (run_qa would walk past it)", 19, 22, 8, 8},
		{"inside a token", 5, 6, 4, 4},
		{"starts on the space before", 3, 7, 3, 4},
		{"past the window", 19, 23, 0, 0},
	}
	for _, tc := range tests {
		s, e := labelWindow(offsets, 3, 8, tc.sc, tc.ec)
		assert.Equal(t, [2]int{tc.start, tc.end}, [2]int{s, e}, tc.name)
	}
	// a window that starts after the answer
	s, e := labelWindow(offsets, 5, 8, 4, 7)
	assert.Equal(t, [2]int{0, 0}, [2]int{s, e})
	// Hangul: three jamo tokens share each syllable's offsets
	hangul := [][2]int{NoOffset, {0, 1}, {0, 1}, {0, 1}, {1, 2}, {1, 2}, {1, 2}, NoOffset}
	s, e = labelWindow(hangul, 1, 6, 0, 1)
	assert.Equal(t, [2]int{1, 3}, [2]int{s, e})
	// no context tokens at all
	s, e = labelWindow([][2]int{NoOffset, NoOffset, NoOffset}, 2, 1, 0, 1)
	assert.Equal(t, [2]int{0, 0}, [2]int{s, e})
}

// handExample is the hand cases' example "e": the question "cat?" over
// context, answered by answer at start.
func handExample(context, answer string, start int) Example {
	return Example{ID: "e", Question: "cat?", Context: context,
		Answers: Answers{Text: []string{answer}, AnswerStart: []int{start}}}
}

// windowOptions are the options of windows of maxLen tokens, each next one
// starting stride context tokens before the end of the last, with every
// window that does not hold the answer kept.
func windowOptions(maxLen, stride int) FeatureOptions {
	return FeatureOptions{MaxSeqLength: maxLen, DocStride: stride, Mode: ModeWindows, NegativeFraction: 1}
}

// featurizeN featurizes exs with opts and requires n features.
func featurizeN(t *testing.T, tok *Tokenizer, exs []Example, opts FeatureOptions, n int) ([]Feature, *FeatureReport) {
	t.Helper()
	feats, rep, err := Featurize(tok, exs, opts)
	require.NoError(t, err)
	require.Len(t, feats, n)
	return feats, rep
}

func TestFeaturizeHandCase(t *testing.T) {
	tok := tinyTokenizer(t)
	ex := handExample("the cat sat on the mat.", "the mat", 15)
	// [CLS] cat ? [SEP] <4 context tokens> [SEP] = 10 tokens; stride 2
	opts := windowOptions(9, 2)
	// context tokens: the cat sat on the mat . (7); room 9-2-3 = 4; windows [0,4) [2,6) [4,7)
	feats, rep := featurizeN(t, tok, []Example{ex}, opts, 3)
	f := feats[1]
	assert.Equal(t, []int64{2, 6, 1, 3, 7, 8, 5, 9, 3}, f.InputIDs, "[CLS] cat [UNK] [SEP] sat on the mat [SEP]")
	assert.Equal(t, []int64{0, 0, 0, 0, 1, 1, 1, 1, 1}, f.TokenTypeIDs)
	assert.Equal(t, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1}, f.AttentionMask)
	assert.Equal(t, [][2]int{NoOffset, NoOffset, NoOffset, NoOffset, {8, 11}, {12, 14}, {15, 18}, {19, 22}, NoOffset}, f.Offsets)
	assert.Equal(t, [2]int{6, 7}, [2]int{f.StartPosition, f.EndPosition})
	assert.Equal(t, 1, f.Window)
	assert.Equal(t, [2]int{0, 0}, [2]int{feats[0].StartPosition, feats[0].EndPosition}, "window 0 ends before the answer")
	assert.Equal(t, [2]int{4, 5}, [2]int{feats[2].StartPosition, feats[2].EndPosition}, "window 2 holds it too")
	assert.Equal(t, &FeatureReport{Mode: ModeWindows, MaxSeqLength: 9, DocStride: 2, Examples: 1, Windows: 3, Features: 3,
		AnswerWindows: 2, NegativeWindows: 1, AnswersInWindow: 1}, rep)

	unanswered := ex
	unanswered.Answers = Answers{}
	feats, rep = featurizeN(t, tok, []Example{unanswered}, opts, 3)
	for _, f := range feats {
		assert.False(t, f.HasAnswer())
	}
	assert.Equal(t, 1, rep.NoAnswer)
	assert.Zero(t, rep.AnswersLost)

	opts.Mode = ModeTruncate
	_, rep = featurizeN(t, tok, []Example{ex}, opts, 1)
	assert.Equal(t, 1, rep.AnswersLost)
	assert.Equal(t, []string{"e"}, rep.LostIDs)
}

func TestFeaturizeErrors(t *testing.T) {
	tok := tinyTokenizer(t)
	long := Example{ID: "long", Question: "the cat sat", Context: "a b c d e f g h", Answers: Answers{Text: []string{"a"}, AnswerStart: []int{0}}}
	tests := []struct {
		name string
		opts FeatureOptions
		want string
	}{
		{"stride vs max", FeatureOptions{MaxSeqLength: 10, DocStride: 7, Mode: ModeWindows, NegativeFraction: 1}, "doc_stride 7 leaves no room"},
		{"stride vs question", FeatureOptions{MaxSeqLength: 9, DocStride: 3, Mode: ModeWindows, NegativeFraction: 1}, `example "long" (question of 3 tokens): doc_stride 3 leaves no room: it must be smaller than the 3 tokens left`},
		{"question too long", FeatureOptions{MaxSeqLength: 6, DocStride: 0, Mode: ModeWindows, NegativeFraction: 1}, "question leaves no room"},
		{"mode", FeatureOptions{MaxSeqLength: 10, DocStride: 1, Mode: "all"}, `mode "all"`},
		{"tiny", FeatureOptions{MaxSeqLength: 3, Mode: ModeWindows}, "max_seq_length 3 is too small"},
		{"negative stride", FeatureOptions{MaxSeqLength: 10, DocStride: -1, Mode: ModeWindows}, "doc_stride -1 is negative"},
		{"fraction", FeatureOptions{MaxSeqLength: 10, DocStride: 1, Mode: ModeWindows, NegativeFraction: 2}, "negative fraction 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Featurize(tok, []Example{long}, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// checkWindows verifies, for every example, that consecutive windows overlap
// by exactly doc_stride tokens, that together they cover the whole context,
// and that every labelled window holds the answer with neither end token
// droppable. It returns how many examples have their answer in some window.
func checkWindows(t *testing.T, tok *Tokenizer, examples []Example, feats []Feature, opts FeatureOptions) int {
	t.Helper()
	byEx := map[int][]Feature{}
	for _, f := range feats {
		byEx[f.ExampleIndex] = append(byEx[f.ExampleIndex], f)
	}
	inWindow := 0
	for i, ex := range examples {
		ws := byEx[i]
		require.NotEmpty(t, ws, "example %s has no window", ex.ID)
		ctx, err := tok.Encode(ex.Context)
		require.NoError(t, err)
		for k, f := range ws {
			require.Equal(t, k, f.Window)
			require.LessOrEqual(t, len(f.InputIDs), opts.MaxSeqLength)
			first, _ := f.ContextRange()
			if k > 0 {
				prev := ws[k-1]
				_, pl := prev.ContextRange()
				prevTail := prev.Offsets[pl-opts.DocStride+1 : pl+1]
				head := f.Offsets[first : first+opts.DocStride]
				require.Equal(t, prevTail, head, "example %s windows %d and %d overlap by doc_stride tokens", ex.ID, k-1, k)
				require.Equal(t, prev.InputIDs[pl-opts.DocStride+1:pl+1], f.InputIDs[first:first+opts.DocStride])
			}
		}
		// remove the overlaps and compare with the whole context
		var joined [][2]int
		for k, f := range ws {
			first, last := f.ContextRange()
			if k > 0 {
				first += opts.DocStride
			}
			joined = append(joined, f.Offsets[first:last+1]...)
		}
		require.Equal(t, ctx.Offsets, joined, "example %s: windows cover the context", ex.ID)

		sc := ex.Answers.AnswerStart[0]
		ec := sc + len([]rune(ex.Answers.Text[0]))
		runes := []rune(ex.Context)
		found := false
		for _, f := range ws {
			first, last := f.ContextRange()
			holds := last >= first && f.Offsets[first][0] <= sc && f.Offsets[last][1] >= ec
			require.Equal(t, holds, f.HasAnswer(), "example %s window %d labelled iff it holds the answer", ex.ID, f.Window)
			if !holds {
				require.Equal(t, [2]int{0, 0}, [2]int{f.StartPosition, f.EndPosition})
				continue
			}
			found = true
			s, e := f.StartPosition, f.EndPosition
			require.True(t, first <= s && s <= e && e <= last, "example %s: labels inside the context", ex.ID)
			span := string(runes[f.Offsets[s][0]:f.Offsets[e][1]])
			require.Contains(t, span, ex.Answers.Text[0])
			require.LessOrEqual(t, f.Offsets[s][0], sc)
			if s+1 <= last {
				require.Greater(t, f.Offsets[s+1][0], sc, "example %s: the start token cannot be dropped", ex.ID)
			}
			require.GreaterOrEqual(t, f.Offsets[e][1], ec)
			if e-1 >= first {
				require.Less(t, f.Offsets[e-1][1], ec, "example %s: the end token cannot be dropped", ex.ID)
			}
		}
		if found {
			inWindow++
		}
	}
	return inWindow
}

// featurizeSQuAD runs the window and label checks over SQuAD examples, with
// the reference sizes (no answer lost, some contexts in several windows) and
// with small windows (many per context).
func featurizeSQuAD(t *testing.T, tok *Tokenizer, examples []Example) {
	t.Helper()
	for _, opts := range []FeatureOptions{DefaultFeatureOptions(), smallWindows} {
		feats, rep, err := Featurize(tok, examples, opts)
		require.NoError(t, err)
		in := checkWindows(t, tok, examples, feats, opts)
		assert.Equal(t, in, rep.AnswersInWindow)
		assert.Equal(t, len(examples)-in, rep.AnswersLost)
		assert.Equal(t, len(feats), rep.Features)
		assert.Equal(t, rep.Windows, rep.AnswerWindows+rep.NegativeWindows)
		t.Logf("max_seq_length %d stride %d: %d features, %d answers in a window, %d lost",
			opts.MaxSeqLength, opts.DocStride, len(feats), rep.AnswersInWindow, rep.AnswersLost)
		if opts.MaxSeqLength == 384 {
			assert.Zero(t, rep.AnswersLost)
			assert.Greater(t, len(feats), len(examples), "some contexts need several windows")
		}
	}
}

// TestFeaturizeSQuAD: the window and label checks over the 300 questions of
// the committed SQuAD sample (testdata/squad-sample.json), whose long contexts
// need several 384-token windows. (SQuAD dev: TestRealDataFeaturizeSQuAD.)
func TestFeaturizeSQuAD(t *testing.T) {
	r, err := ReadFile(squadSample(t), FormatSQuAD)
	require.NoError(t, err)
	require.Len(t, r.Examples, 300)
	featurizeSQuAD(t, bertTokenizer(t), r.Examples)
}

// joinedTruncation: with the reference's single joined context, truncate mode
// loses more than the fraction minLost of the answers, windows mode none — and
// the report says so.
func joinedTruncation(t *testing.T, tok *Tokenizer, input string, minLost float64) {
	t.Helper()
	test := joinedTest(t, input)
	fo := DefaultFeatureOptions()
	fo.Mode = ModeTruncate
	feats, rep, err := Featurize(tok, test, fo)
	require.NoError(t, err)
	assert.Len(t, feats, len(test))
	assert.Equal(t, len(test), rep.AnswersInWindow+rep.AnswersLost)
	assert.Greater(t, float64(rep.AnswersLost), minLost*float64(len(test)), "truncation loses most answers of the joined context")
	t.Logf("truncate mode: %d of %d answers lost", rep.AnswersLost, len(test))
	assert.Len(t, rep.LostIDs, rep.AnswersLost)

	fo.Mode = ModeWindows
	feats, rep, err = Featurize(tok, test, fo)
	require.NoError(t, err)
	assert.Zero(t, rep.AnswersLost)
	assert.Equal(t, len(test), checkWindows(t, tok, test, feats, fo))
}

// TestFeaturizeJoinedTruncation: joinedTruncation on examples/sample-qa.txt,
// whose short answers make a shorter joined context than TAT-QA's: more than
// half are lost. (TAT-QA, 80%: TestRealDataFeaturizeTATQATruncation.)
func TestFeaturizeJoinedTruncation(t *testing.T) {
	joinedTruncation(t, bertTokenizer(t), sampleQA(t), 0.5)
}

func TestFeaturizeNegativeFraction(t *testing.T) {
	tok := tinyTokenizer(t)
	var exs []Example
	ctx := strings.Repeat("a b c d e f g h ", 10) + "the mat"
	for i := range 40 {
		exs = append(exs, Example{ID: string(rune('A' + i)), Question: "cat", Context: ctx,
			Answers: Answers{Text: []string{"the mat"}, AnswerStart: []int{len(ctx) - 7}}})
	}
	opts := FeatureOptions{MaxSeqLength: 12, DocStride: 2, Mode: ModeWindows, NegativeFraction: 0.25, Seed: 3}
	feats, rep, err := Featurize(tok, exs, opts)
	require.NoError(t, err)
	assert.Equal(t, 40, rep.AnswerWindows, "every answer window is kept")
	assert.Equal(t, rep.Windows, rep.AnswerWindows+rep.NegativeWindows+rep.DroppedWindows)
	frac := float64(rep.NegativeWindows) / float64(rep.NegativeWindows+rep.DroppedWindows)
	assert.InDelta(t, 0.25, frac, 0.05)
	again, _, err := Featurize(tok, exs, opts)
	require.NoError(t, err)
	assert.Equal(t, feats, again, "the same seed keeps the same windows")
	opts.NegativeFraction = 0
	_, rep, err = Featurize(tok, exs, opts)
	require.NoError(t, err)
	assert.Equal(t, 40, rep.Features)
}

func TestFeaturizeCapsToModelMaxLength(t *testing.T) {
	tok, err := LoadTokenizer(fixtureBase(t))
	require.NoError(t, err)
	ex := Example{ID: "x", Question: "q", Context: strings.Repeat("word ", 400), Answers: Answers{Text: []string{"word"}, AnswerStart: []int{0}}}
	opts := DefaultFeatureOptions()
	_, _, err = Featurize(tok, []Example{ex}, opts)
	assert.ErrorContains(t, err, "doc_stride 128 leaves no room", "the default stride does not fit a capped window")
	opts.DocStride = 32
	feats, rep, err := Featurize(tok, []Example{ex}, opts)
	require.NoError(t, err)
	assert.Equal(t, 128, rep.MaxSeqLength)
	assert.Equal(t, 384, rep.CappedFrom)
	for _, f := range feats {
		assert.LessOrEqual(t, len(f.InputIDs), 128)
	}
}

func TestFeaturesJSONL(t *testing.T) {
	tok := tinyTokenizer(t)
	ex := Example{ID: "e1", Question: "cat?", Context: "the cat sat on the mat.", Answers: Answers{Text: []string{"sat"}, AnswerStart: []int{8}}}
	feats, _, err := Featurize(tok, []Example{ex}, windowOptions(9, 2))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, EncodeFeaturesJSONL(&buf, feats[:1]))
	assert.JSONEq(t, `{"example_id":"e1","window":0,"input_ids":[2,6,1,3,5,6,7,8,3],"attention_mask":[1,1,1,1,1,1,1,1,1],
		"token_type_ids":[0,0,0,0,1,1,1,1,1],"offsets":[null,null,null,null,[0,3],[4,7],[8,11],[12,14],null],
		"start_position":6,"end_position":6}`, buf.String())

	path := filepath.Join(t.TempDir(), "f.jsonl")
	require.NoError(t, WriteFeaturesJSONL(path, feats))
	back, err := ReadFeaturesJSONL(path)
	require.NoError(t, err)
	for i := range feats {
		feats[i].ExampleIndex = 0
	}
	assert.Equal(t, feats, back)

	var f Feature
	err = json.Unmarshal([]byte(`{"input_ids":[1,2],"attention_mask":[1],"offsets":[null,null]}`), &f)
	assert.ErrorContains(t, err, "differ in length")
}
