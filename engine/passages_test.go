package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/internal/trained"
)

// A query over several passages ranks the spans of all windows of all
// passages as run_qa ranks the windows of one context, each answer naming
// its passage: best first, from more than one passage, each passage's spans
// in the order that passage alone gives them; one passage gives its
// context's answers.
func TestAnswerPassages(t *testing.T) {
	e := tinyEngine(t, nil)
	ctx := context.Background()
	passages := []string{tinyQueries[0].Context, tinyQueries[1].Context, tinyQueries[2].Context}
	q := Query{Question: tinyQueries[0].Question, Passages: passages, TopK: 20}
	r, err := e.Answer(ctx, q)
	require.NoError(t, err)
	require.Len(t, r.Answers, 20)
	assert.Equal(t, "fix", r.Adapter)
	from := map[int][]Answer{}
	for i, a := range r.Answers {
		require.NotNil(t, a.Passage, "answer %d names its passage", i)
		p := *a.Passage
		from[p] = append(from[p], a)
		assert.Equal(t, a.Answer, string([]rune(passages[p])[a.Start:a.End]), "answer %d", i)
		if i > 0 {
			assert.GreaterOrEqual(t, r.Answers[i-1].Score, a.Score, "best first")
		}
	}
	assert.Greater(t, len(from), 1, "the best spans come from more than one passage: the test would prove little")
	for p, got := range from {
		alone, err := e.Answer(ctx, Query{Question: q.Question, Passages: passages[p : p+1], TopK: 20})
		require.NoError(t, err)
		var want [][2]int
		for _, a := range alone.Answers[:len(got)] {
			want = append(want, [2]int{a.Start, a.End})
		}
		var have [][2]int
		for _, a := range got {
			have = append(have, [2]int{a.Start, a.End})
		}
		assert.Equal(t, want, have, "passage %d's spans in its own order", p)
	}
	for _, tq := range tinyQueries {
		tq.TopK = 3
		one, err := e.Answer(ctx, Query{Question: tq.Question, Passages: []string{tq.Context}, TopK: 3})
		require.NoError(t, err)
		ref, err := e.Answer(ctx, tq)
		require.NoError(t, err)
		for i := range one.Answers {
			require.NotNil(t, one.Answers[i].Passage)
			assert.Equal(t, 0, *one.Answers[i].Passage)
			one.Answers[i].Passage = nil
		}
		assert.Equal(t, ref.Answers, one.Answers, "one passage answers as its context")
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
// without SQuAD 2.0, the first carrying its passage's null and best span
// scores.
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
			default: // the spans without SQuAD 2.0, the first with its passage's margins
				require.NotNil(t, r.Answers[0].NullScore)
				require.NotNil(t, r.Answers[0].BestSpanScore)
				r.Answers[0].NullScore, r.Answers[0].BestSpanScore = nil, nil
				assert.Equal(t, plain.Answers, r.Answers)
			}
		})
	}
}

// An adapter that knows its data (internal/trained) answers a question over
// passages from the passage that holds the answer, wherever it stands, and
// abstains when none does.
func TestAnswerPassagesTrained(t *testing.T) {
	base, adapter := trained.SQuAD2Adapter(t)
	o := DefaultOptions()
	o.Model, o.Device, o.Adapters = base, gotch.CPU, []NamedAdapter{{Name: "squad2", Dir: adapter}}
	e, err := Load(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	ctx := context.Background()
	for right, ps := range [][]string{{trained.RevenuePassage, trained.Distractor}, {trained.Distractor, trained.RevenuePassage}} {
		r, err := e.Answer(ctx, Query{Question: trained.Revenue, Passages: ps})
		require.NoError(t, err)
		a := r.Answers[0]
		assert.Equal(t, trained.RevenueAnswer, a.Answer, "passages %q", ps)
		require.NotNil(t, a.Passage)
		assert.Equal(t, right, *a.Passage)
		assert.False(t, a.NoAnswer)

		r, err = e.Answer(ctx, Query{Question: trained.Unanswerable, Passages: ps})
		require.NoError(t, err)
		assert.True(t, r.Answers[0].NoAnswer, "%+v", r.Answers[0])
		assert.Equal(t, "", r.Answers[0].Answer)
	}
}
