package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A query over several passages ranks the spans of all their windows by
// their probability in their window (data.PipelineAnswers), each answer
// naming its passage: the answers from one passage are those of that
// passage asked alone (a passage's scores do not depend on the others), and
// a short passage's best span is the one its context query gives.
func TestAnswerPassages(t *testing.T) {
	e := tinyEngine(t, nil)
	ctx := context.Background()
	passages := []string{tinyQueries[0].Context, tinyQueries[1].Context, tinyQueries[2].Context}
	q := Query{Question: tinyQueries[0].Question, Passages: passages, TopK: 6}
	r, err := e.Answer(ctx, q)
	require.NoError(t, err)
	require.Len(t, r.Answers, 6)
	assert.Equal(t, "fix", r.Adapter)
	from := map[int]int{}
	for i, a := range r.Answers {
		require.NotNil(t, a.Passage, "answer %d names its passage", i)
		p := *a.Passage
		from[p]++
		assert.Equal(t, a.Answer, string([]rune(passages[p])[a.Start:a.End]), "answer %d", i)
		assert.Greater(t, a.Score, 0.0)
		assert.LessOrEqual(t, a.Score, 1.0)
		if i > 0 {
			assert.GreaterOrEqual(t, r.Answers[i-1].Score, a.Score, "best first")
		}
	}
	assert.Greater(t, len(from), 1, "the best spans come from more than one passage: the test would prove little")

	for p := range passages {
		alone, err := e.Answer(ctx, Query{Question: q.Question, Passages: passages[p : p+1], TopK: 6})
		require.NoError(t, err)
		n := 0
		for _, a := range r.Answers {
			if *a.Passage != p {
				continue
			}
			b := alone.Answers[n]
			assert.Equal(t, 0, *b.Passage)
			assert.Equal(t, [3]any{a.Answer, a.Start, a.End}, [3]any{b.Answer, b.Start, b.End}, "passage %d answer %d", p, n)
			assert.InDelta(t, b.Score, a.Score, 1e-6, "passage %d answer %d", p, n)
			n++
		}
	}
	for _, tq := range tinyQueries[:2] { // one window each
		one, err := e.Answer(ctx, Query{Question: tq.Question, Passages: []string{tq.Context}})
		require.NoError(t, err)
		ref, err := e.Answer(ctx, tq)
		require.NoError(t, err)
		assert.Equal(t, ref.Answers[0].Answer, one.Answers[0].Answer)
		assert.Nil(t, ref.Answers[0].Passage, "a context query's answers name no passage")
	}
}

func TestAnswerPassagesErrors(t *testing.T) {
	e := tinyEngine(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		q    Query
		want string
	}{
		{"both", Query{Question: "who?", Context: "alice works.", Passages: []string{"bob."}}, "a context or passages, not both"},
		{"empty passage", Query{Question: "who?", Passages: []string{"bob.", " "}}, "passage 1 is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Answer(ctx, c.q)
			assert.ErrorIs(t, err, ErrBadInput)
			assert.ErrorContains(t, err, c.want)
		})
	}
	_, err := e.Predict(ctx, []Query{{Question: "who?", Passages: []string{"bob."}}})
	assert.ErrorIs(t, err, ErrBadInput)
	assert.ErrorContains(t, err, "Predict answers one context per query")
}

// With SQuAD 2.0, each passage decides as its context alone would: a
// threshold between two passages' null odds leaves only the answering
// passage's spans; below both, the answer is the null one, with the scores
// of the passage closest to answering; above both, the spans are those
// without SQuAD 2.0.
func TestAnswerPassagesSQuAD2(t *testing.T) {
	passages := []string{tinyQueries[0].Context, tinyQueries[1].Context}
	q := Query{Question: tinyQueries[0].Question, Passages: passages, TopK: 4}
	var odds [2]float64
	for p, c := range passages {
		odds[p], _ = nullOdds(t, Query{Question: q.Question, Context: c})
	}
	require.NotEqual(t, odds[0], odds[1])
	lo, hi := min(odds[0], odds[1]), max(odds[0], odds[1])
	closer := 0 // the passage with the lower null odds answers first
	if odds[1] < odds[0] {
		closer = 1
	}
	plain, err := tinyEngine(t, nil).Answer(context.Background(), q)
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		threshold float64
	}{
		{"below both: abstains", lo - 1},
		{"between: one passage answers", (lo + hi) / 2},
		{"above both: the plain spans", hi + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tinyEngine(t, func(o *Options) {
				o.Version2WithNegative, o.NullScoreDiffThreshold = ptr(true), ptr(tc.threshold)
			})
			r, err := e.Answer(context.Background(), q)
			require.NoError(t, err)
			switch {
			case tc.threshold < lo:
				require.Len(t, r.Answers, 1)
				a := r.Answers[0]
				assert.True(t, a.NoAnswer)
				assert.Equal(t, "", a.Answer)
				require.NotNil(t, a.Passage)
				assert.Equal(t, closer, *a.Passage)
				require.NotNil(t, a.NullScore)
				require.NotNil(t, a.BestSpanScore)
				require.NotNil(t, r.NullOdds)
				assert.InDelta(t, lo, *r.NullOdds, 1e-6)
			case tc.threshold < hi:
				require.NotEmpty(t, r.Answers)
				for _, a := range r.Answers {
					assert.False(t, a.NoAnswer)
					assert.Equal(t, closer, *a.Passage, "only the passage under the threshold answers")
				}
			default:
				assert.Equal(t, plain.Answers, r.Answers)
			}
		})
	}
}
