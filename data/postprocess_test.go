package data

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postprocessCase is "the cat sat on the mat." cut into three windows
// (max_seq_length 9, stride 2) with hand-chosen logits:
//
//	window 0: best start is a question token (excluded); "cat sat" scores 2+3 = 5
//	window 1: "the mat" scores 4+3.5 = 7.5
//	window 2: best end is the final [SEP] (excluded); "the mat." scores 1+2 = 3
func postprocessCase(t *testing.T) ([]Example, []Feature, [][]float32, [][]float32) {
	tok := tinyTokenizer(t)
	ex := handExample("the cat sat on the mat.", "the mat", 15)
	feats, _ := featurizeN(t, tok, []Example{ex}, windowOptions(9, 2), 3)
	starts := [][]float32{
		{0, 5, 0, 0, 1, 2, 0, 0, 0},
		{0, 0, 0, 0, 0, 0, 4, 0, 0},
		{0, 0, 0, 0, 1, 0, 0, 0, -1, -1, -1}, // padded past the feature's 8 tokens
	}
	ends := [][]float32{
		{0, 0, 0, 0, 0, 0, 3, 0, 0},
		{0, 0, 0, 0, 0, 0, 0, 3.5, 0},
		{0, 0, 0, 0, 0, 0, 2, 9, -1, -1, -1},
	}
	return []Example{ex}, feats, starts, ends
}

func TestPostprocess(t *testing.T) {
	exs, feats, starts, ends := postprocessCase(t)
	preds, err := Postprocess(exs, feats, starts, ends, PostprocessOptions{NBestSize: 2, MaxAnswerLength: 30})
	require.NoError(t, err)
	require.Len(t, preds, 1)
	p := preds[0]
	assert.Equal(t, "e", p.ID)
	assert.Equal(t, "the mat", p.Text)
	assert.Equal(t, [2]int{15, 22}, [2]int{p.Start, p.End})
	assert.Equal(t, float32(4), p.StartLogit)
	assert.Equal(t, float32(3.5), p.EndLogit)
	// softmax over the two best (7.5 and 5): 1/(1+e^-2.5)
	assert.InDelta(t, 0.9241418199787566, p.Score, 1e-12)
	require.Len(t, p.NBest, 2)
	assert.Equal(t, "cat sat", p.NBest[1].Text)
	assert.InDelta(t, 0.0758581800212435, p.NBest[1].Score, 1e-12)

	// with n_best 20 every pair of context tokens is a candidate; the best is the same
	preds, err = Postprocess(exs, feats, starts, ends, DefaultPostprocessOptions())
	require.NoError(t, err)
	assert.Equal(t, "the mat", preds[0].Text)
	sum := 0.0
	for _, c := range preds[0].NBest {
		sum += c.Score
	}
	assert.InDelta(t, 1, sum, 1e-9)
	assert.Len(t, preds[0].NBest, 20)

	opts := DefaultPostprocessOptions()
	opts.TopK = 3
	preds, err = Postprocess(exs, feats, starts, ends, opts)
	require.NoError(t, err)
	assert.Len(t, preds[0].NBest, 3)
	assert.Equal(t, preds[0].Candidate, preds[0].NBest[0])
}

func TestPostprocessMaxAnswerLengthAndEmpty(t *testing.T) {
	exs, feats, starts, ends := postprocessCase(t)
	// every candidate of the two best starts and ends is 2+ tokens long
	preds, err := Postprocess(exs, feats, starts, ends, PostprocessOptions{NBestSize: 2, MaxAnswerLength: 1})
	require.NoError(t, err)
	assert.Equal(t, Candidate{Text: "empty", Start: -1, End: -1, Score: 1}, preds[0].Candidate)

	// an example without features gets the placeholder too
	two := append(exs, Example{ID: "f", Context: "x"})
	preds, err = Postprocess(two, feats, starts, ends, PostprocessOptions{NBestSize: 2, MaxAnswerLength: 30})
	require.NoError(t, err)
	assert.Equal(t, "the mat", preds[0].Text)
	assert.Equal(t, "empty", preds[1].Text)
	assert.Equal(t, "f", preds[1].ID)
}

func TestPostprocessErrors(t *testing.T) {
	exs, feats, starts, ends := postprocessCase(t)
	opts := DefaultPostprocessOptions()
	_, err := Postprocess(exs, feats, starts[:2], ends, opts)
	assert.ErrorContains(t, err, "3 features but 2 start and 3 end logit rows")
	short := append([][]float32{}, starts...)
	short[1] = short[1][:4]
	_, err = Postprocess(exs, feats, short, ends, opts)
	assert.ErrorContains(t, err, "feature 1 has 9 tokens but 4 start")
	other := []Example{{ID: "zzz", Context: exs[0].Context}}
	_, err = Postprocess(other, feats, starts, ends, opts)
	assert.ErrorContains(t, err, `feature 0 belongs to example "e", which is not among the examples`)
	_, err = Postprocess(append(exs, exs[0]), feats, starts, ends, opts)
	assert.ErrorContains(t, err, `example id "e" appears twice`)
	_, err = Postprocess(exs, feats, starts, ends, PostprocessOptions{})
	assert.ErrorContains(t, err, "must be positive")
	shortCtx := []Example{{ID: "e", Context: "the cat"}}
	_, err = Postprocess(shortCtx, feats, starts, ends, opts)
	assert.ErrorContains(t, err, "do not fit the context")
}

func TestSoftmaxStable(t *testing.T) {
	list := make([]Candidate, 2)
	softmaxInto([]float64{1000, 999}, list)
	assert.InDelta(t, 1/(1+math.Exp(-1)), list[0].Score, 1e-12)
	assert.False(t, math.IsNaN(list[1].Score))
}
