package data

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v2Logits are the logits of postprocessCase's three windows ("the cat sat
// on the mat." as [CLS] cat [UNK] [SEP] c c c c [SEP]; window 1's context
// tokens 4..7 are "sat on the mat", window 2 has 3 context tokens): zero but
// for [CLS] (index 0) of each window and the span "the mat" of window 1
// (start 6 = 4, end 7 = 3.5: score 7.5).
func v2Logits(cls [3][2]float32) ([][]float32, [][]float32) {
	starts := [][]float32{make([]float32, 9), make([]float32, 9), make([]float32, 8)}
	ends := [][]float32{make([]float32, 9), make([]float32, 9), make([]float32, 8)}
	for w := range cls {
		starts[w][0], ends[w][0] = cls[w][0], cls[w][1]
	}
	starts[1][6], ends[1][7] = 4, 3.5
	return starts, ends
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// TestPostprocessVersion2 checks HF's version_2_with_negative choice on
// hand-computed cases: the null score is the lowest [CLS] start+end over
// the windows (the first on ties), the answer is "" when null score −
// best span's start+end > threshold, the null candidate is in the n best
// (added back when it fell out), and the "empty" placeholder stands in as
// best non-null when no span is valid.
func TestPostprocessVersion2(t *testing.T) {
	exs, feats, _, _ := postprocessCase(t)
	theMat := Candidate{Text: "the mat", Start: 15, End: 22, StartLogit: 4, EndLogit: 3.5}
	null := func(s, e float32) Candidate { return Candidate{Start: -1, End: -1, StartLogit: s, EndLogit: e} }
	tests := []struct {
		name      string
		cls       [3][2]float32
		opts      PostprocessOptions
		want      Candidate // Score not compared
		odds      float64
		wantNBest []string // texts, best first
		nbestNull Candidate
		score     float64 // probability of want; 0: not checked
	}{
		{name: "span beats the null score",
			cls:  [3][2]float32{{1, 1}, {0.5, 0.5}, {3, 0}},
			opts: PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30, Version2WithNegative: true},
			want: theMat, odds: 1 - 7.5, nbestNull: null(0.5, 0.5)},
		{name: "null beats the span: the lowest window's [CLS], 8 > 7.5",
			cls:  [3][2]float32{{5, 4}, {5, 3}, {10, 0}},
			opts: PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30, Version2WithNegative: true},
			want: null(5, 3), odds: 0.5, nbestNull: null(5, 3)},
		{name: "threshold 0.5: a difference of 0.5 is not above it",
			cls:  [3][2]float32{{5, 4}, {5, 3}, {10, 0}},
			opts: PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30, Version2WithNegative: true, NullScoreDiffThreshold: 0.5},
			want: theMat, odds: 0.5, nbestNull: null(5, 3)},
		{name: "threshold -7: null although the span scores 6.5 more",
			cls:  [3][2]float32{{1, 1}, {0.5, 0.5}, {3, 0}},
			opts: PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30, Version2WithNegative: true, NullScoreDiffThreshold: -7},
			want: null(0.5, 0.5), odds: -6.5, nbestNull: null(0.5, 0.5)},
		{name: "null added back after the n best",
			cls:  [3][2]float32{{1, 1}, {0.5, 0.5}, {3, 0}},
			opts: PostprocessOptions{NBestSize: 1, MaxAnswerLength: 30, Version2WithNegative: true},
			want: theMat, odds: -6.5, wantNBest: []string{"the mat", ""}, nbestNull: null(0.5, 0.5),
			score: sigmoid(6.5)},
		{name: "no valid span: empty placeholder, null chosen over it",
			cls:  [3][2]float32{{1, 1}, {0.5, 0.5}, {3, 0}},
			opts: PostprocessOptions{NBestSize: 1, MaxAnswerLength: 1, Version2WithNegative: true},
			want: null(0.5, 0.5), odds: 1, wantNBest: []string{"empty", ""}, nbestNull: null(0.5, 0.5),
			score: sigmoid(1)},
		{name: "equal [CLS] sums: the first window's logits",
			cls:  [3][2]float32{{2, 1}, {1, 2}, {2, 2}},
			opts: PostprocessOptions{NBestSize: 1, MaxAnswerLength: 30, Version2WithNegative: true},
			want: theMat, odds: 3 - 7.5, wantNBest: []string{"the mat", ""}, nbestNull: null(2, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			starts, ends := v2Logits(tc.cls)
			preds, err := Postprocess(exs, feats, starts, ends, tc.opts)
			require.NoError(t, err)
			p := preds[0]
			got := p.Candidate
			got.Score = 0
			assert.Equal(t, tc.want, got)
			require.NotNil(t, p.NullOdds)
			assert.Equal(t, tc.odds, *p.NullOdds)
			var texts []string
			nulls := 0
			sum := 0.0
			for _, c := range p.NBest {
				texts = append(texts, c.Text)
				sum += c.Score
				if c.Text == "" {
					nulls++
					c.Score = 0
					assert.Equal(t, tc.nbestNull, c)
				}
			}
			assert.Equal(t, 1, nulls, "the null answer is in the n best once")
			assert.InDelta(t, 1, sum, 1e-9)
			if tc.wantNBest != nil {
				assert.Equal(t, tc.wantNBest, texts)
			}
			if tc.score != 0 {
				assert.InDelta(t, tc.score, p.Score, 1e-12)
			}
		})
	}
}

// TestPostprocessVersion2Off: without Version2WithNegative the same logits
// give the v1 answer, no null candidate and no null odds.
func TestPostprocessVersion2Off(t *testing.T) {
	exs, feats, _, _ := postprocessCase(t)
	starts, ends := v2Logits([3][2]float32{{5, 4}, {5, 3}, {10, 0}})
	preds, err := Postprocess(exs, feats, starts, ends, DefaultPostprocessOptions())
	require.NoError(t, err)
	assert.Equal(t, "the mat", preds[0].Text)
	assert.Nil(t, preds[0].NullOdds)
	for _, c := range preds[0].NBest {
		assert.NotEqual(t, "", c.Text)
	}
	assert.Equal(t, preds[0].Candidate, preds[0].NBest[0])
}

// TestPostprocessVersion2TopK: TopK cuts the listed candidates after the
// choice, so the chosen span may lie beyond them; an example without
// features gets "empty" and no null odds.
func TestPostprocessVersion2TopK(t *testing.T) {
	exs, feats, _, _ := postprocessCase(t)
	starts, ends := v2Logits([3][2]float32{{5, 4}, {5, 3}, {10, 0}})
	opts := PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30, TopK: 1, Version2WithNegative: true, NullScoreDiffThreshold: 1}
	two := append(exs, Example{ID: "f", Context: "x"})
	preds, err := Postprocess(two, feats, starts, ends, opts)
	require.NoError(t, err)
	assert.Equal(t, "the mat", preds[0].Text)
	require.Len(t, preds[0].NBest, 1)
	assert.Equal(t, "", preds[0].NBest[0].Text, "the null answer ranks first")
	assert.Equal(t, "empty", preds[1].Text)
	assert.Nil(t, preds[1].NullOdds)
}
