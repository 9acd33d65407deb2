package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/peft"
)

// unanswerable is a question its context does not answer.
var unanswerable = Query{Question: "who is the ceo of acme?", Context: "alice works at acme. bob lives in paris."}

func ptr[T any](v T) *T { return &v }

// nullOdds is the query's null score minus its best span's under SQuAD 2.0
// post-processing (threshold 0), and that Answer.
func nullOdds(t *testing.T, q Query) (float64, Answer) {
	t.Helper()
	e := tinyEngine(t, func(o *Options) { o.Version2WithNegative = ptr(true) })
	r, err := e.Answer(context.Background(), q)
	require.NoError(t, err)
	require.NotNil(t, r.NullOdds)
	a := r.Answers[0]
	require.NotNil(t, a.NullScore)
	require.NotNil(t, a.BestSpanScore)
	// The null odds are the difference of the two scores (float32 rounding).
	assert.InDelta(t, *a.NullScore-*a.BestSpanScore, *r.NullOdds, 1e-4)
	return *r.NullOdds, a
}

// With SQuAD 2.0 on, a threshold below the query's null odds makes it
// abstain (text "", NoAnswer, no span) and a huge one answers with a span;
// Answer, AnswerBatch and Predict agree.
func TestEngineSQuAD2Threshold(t *testing.T) {
	odds, _ := nullOdds(t, unanswerable)
	for _, tc := range []struct {
		name      string
		threshold float64
		abstain   bool
	}{
		{"below the null odds: abstains", odds - 1, true},
		{"huge: a span", 1e6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tinyEngine(t, func(o *Options) {
				o.Version2WithNegative, o.NullScoreDiffThreshold = ptr(true), ptr(tc.threshold)
			})
			on, th, err := e.Version2("")
			require.NoError(t, err)
			assert.True(t, on)
			assert.Equal(t, tc.threshold, th)
			ctx := context.Background()
			one, err := e.Answer(ctx, topK([]Query{unanswerable}, 3)[0])
			require.NoError(t, err)
			batch, err := e.AnswerBatch(ctx, []Query{unanswerable})
			require.NoError(t, err)
			pred, err := e.Predict(ctx, []Query{unanswerable})
			require.NoError(t, err)
			for _, r := range []Result{one, batch[0], pred[0]} {
				a := r.Answers[0]
				assert.Equal(t, tc.abstain, a.NoAnswer)
				require.NotNil(t, a.NullScore)
				require.NotNil(t, a.BestSpanScore)
				if tc.abstain {
					assert.Equal(t, "", a.Answer)
					assert.Equal(t, -1, a.Start)
					assert.Equal(t, -1, a.End)
				} else {
					assert.NotEmpty(t, a.Answer)
					assert.Equal(t, a.Answer, string([]rune(unanswerable.Context)[a.Start:a.End]))
				}
			}
			// The other answers asked for are spans, never the null answer again.
			require.Len(t, one.Answers, 3)
			for _, a := range one.Answers[1:] {
				assert.NotEmpty(t, a.Answer)
				assert.False(t, a.NoAnswer)
				assert.Nil(t, a.NullScore)
			}
			b, err := json.Marshal(one.Answers[0])
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			assert.Contains(t, m, "null_score")
			assert.Contains(t, m, "best_span_score")
			if tc.abstain {
				assert.Equal(t, true, m["no_answer"])
			} else {
				assert.NotContains(t, m, "no_answer")
			}
		})
	}
}

// Without SQuAD 2.0 the answers are as before: no null fields, in the JSON
// neither, and SQuAD 2.0 turned off over an adapter saved with it gives the
// very same answers.
func TestEngineSQuAD2OffUnchanged(t *testing.T) {
	ctx := context.Background()
	plain := tinyEngine(t, nil)
	on, _, err := plain.Version2("")
	require.NoError(t, err)
	assert.False(t, on)
	want, err := plain.AnswerBatch(ctx, topK(append([]Query{unanswerable}, tinyQueries...), 2))
	require.NoError(t, err)
	for _, r := range want {
		assert.Nil(t, r.NullOdds)
		for _, a := range r.Answers {
			b, err := json.Marshal(a)
			require.NoError(t, err)
			assert.JSONEq(t, `{"answer":`+string(must(json.Marshal(a.Answer)))+`,"score":`+string(must(json.Marshal(a.Score)))+
				`,"start":`+string(must(json.Marshal(a.Start)))+`,"end":`+string(must(json.Marshal(a.End)))+`}`, string(b))
		}
	}
	_, adapter := tinyDirs(t)
	saved := withSQuAD2(t, adapter, -1e6)
	off := loadTiny(t, saved, func(o *Options) { o.Version2WithNegative = ptr(false) })
	got, err := off.AnswerBatch(ctx, topK(append([]Query{unanswerable}, tinyQueries...), 2))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// Load picks up the threshold saved with the adapter (peft.SQuAD2File),
// unless Options give another.
func TestEngineSavedSQuAD2Threshold(t *testing.T) {
	odds, _ := nullOdds(t, unanswerable)
	_, adapter := tinyDirs(t)
	for _, tc := range []struct {
		name     string
		saved    float64
		override *float64
		want     float64
		abstain  bool
	}{
		{"saved below the odds: abstains", odds - 1, nil, odds - 1, true},
		{"saved above the odds: a span", odds + 1, nil, odds + 1, false},
		{"given threshold beats the saved one", odds - 1, ptr(odds + 1), odds + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := loadTiny(t, withSQuAD2(t, adapter, tc.saved), func(o *Options) { o.NullScoreDiffThreshold = tc.override })
			on, th, err := e.Version2("fix")
			require.NoError(t, err)
			assert.True(t, on, "the adapter's saved setting turns SQuAD 2.0 on")
			assert.Equal(t, tc.want, th)
			info := e.Adapters()[0]
			assert.True(t, info.Version2WithNegative)
			assert.Equal(t, tc.want, info.NullScoreDiffThreshold)
			r, err := e.Answer(context.Background(), unanswerable)
			require.NoError(t, err)
			assert.Equal(t, tc.abstain, r.Answers[0].NoAnswer)
			assert.Equal(t, tc.abstain, r.Answers[0].Answer == "")
		})
	}
}

// withSQuAD2 writes a copy of the adapter directory src with a SQuAD 2.0
// setting of threshold, through peft.Dir, and returns the copy.
func withSQuAD2(t *testing.T, src string, threshold float64) string {
	t.Helper()
	d, err := peft.OpenDir(src)
	require.NoError(t, err)
	d.SQuAD2 = &peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: threshold, ThresholdFrom: peft.ThresholdBestF1}
	dst := t.TempDir()
	require.NoError(t, d.Write(dst))
	back, err := peft.OpenDir(dst)
	require.NoError(t, err)
	require.Equal(t, d.SQuAD2, back.SQuAD2)
	return dst
}

// loadTiny loads the tiny base with the adapter directory dir as "fix".
func loadTiny(t *testing.T, dir string, change func(o *Options)) *Engine {
	t.Helper()
	return tinyEngine(t, func(o *Options) {
		o.Adapters = []NamedAdapter{{Name: "fix", Dir: dir}}
		if change != nil {
			change(o)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
