package data

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v2Examples: a and b answerable, c and d not, e answerable by "the" only,
// which normalizes to "" (so its gold is "", but it counts as HasAns).
var v2Examples = []Example{
	{ID: "a", Answers: Answers{Text: []string{"the cat", "cat"}, AnswerStart: []int{0, 4}}},
	{ID: "b", Answers: Answers{Text: []string{"sat on the mat"}, AnswerStart: []int{8}}},
	{ID: "c"},
	{ID: "d"},
	{ID: "e", Answers: Answers{Text: []string{"the"}, AnswerStart: []int{0}}},
}

var v2Preds = map[string]string{"a": "cat", "b": "on mat", "c": "", "d": "dog", "e": ""}

// TestEvaluateTextsV2 checks evaluate-v2.0.py's numbers on hand-computed
// cases. Raw scores: a 1/1, b 0/0.8 (P 1, R 2/3), c 1/1, d 0/0, e 1/1.
// With no-answer probabilities a −2, e −1, b 0.5, d 1.5, c 3 and threshold
// 1, d and c count as answered "": d becomes 1/1. Best thresholds (2
// unanswerable to start from, questions by increasing probability): exact
// 2 →a 3 →e 4 →b 4 →d 3 →c 3: 4/5 at −1; F1 2 →3 →4 →4.8 (b, 0.5) →3.8 →3.8.
func TestEvaluateTextsV2(t *testing.T) {
	naProbs := map[string]float64{"a": -2, "b": 0.5, "c": 3, "d": 1.5, "e": -1, "zzz": -9}
	tests := []struct {
		name    string
		naProbs map[string]float64
		thresh  float64
		preds   map[string]string
		want    MetricsV2
	}{
		{"null odds, threshold 1", naProbs, 1, v2Preds, withV2Best(v2Want(80, 96, 200.0/3, 280.0/3, 100, 100))},
		{"threshold 2: only c's probability is above it", naProbs, 2, v2Preds, withV2Best(v2Want(60, 76, 200.0/3, 280.0/3, 50, 50))},
		{"threshold -1.5: all but a count as answered \"\", answerable b and e score 0", naProbs, -1.5, v2Preds,
			withV2Best(v2Want(60, 60, 100.0/3, 100.0/3, 100, 100))},
		{"no probabilities: no thresholds, no best", nil, 1, v2Preds, v2Want(60, 76, 200.0/3, 280.0/3, 50, 50)},
		{"a missing prediction is left out; unanswerable d still counts at the start of best",
			map[string]float64{"a": -2, "b": 0.5, "c": 3, "e": -1}, 1,
			map[string]string{"a": "cat", "b": "on mat", "c": "", "e": ""}, MetricsV2{
				Exact: 75, F1: 95, Total: 4,
				HasAnsExact: 200.0 / 3, HasAnsF1: 280.0 / 3, HasAnsTotal: 3,
				NoAnsExact: 100, NoAnsF1: 100, NoAnsTotal: 1,
				// 2 →a 3 →e 4 →b 4 (4.8) →c 4 (4.8): 4/4 and 4.8/4
				BestExact: 100, BestExactThresh: -1, BestF1: 120, BestF1Thresh: 0.5, HasBest: true, Missing: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EvaluateTextsV2(tc.preds, tc.naProbs, v2Examples, tc.thresh)
			assertMetricsV2(t, tc.want, got)
		})
	}
}

// v2Want is the MetricsV2 of a prediction for each of v2Examples (5
// questions, 3 answerable, 2 not) with these scores: exact and F1 over all
// questions, over the answerable ones and over the others; no best_*.
func v2Want(exact, f1, hasAnsExact, hasAnsF1, noAnsExact, noAnsF1 float64) MetricsV2 {
	return MetricsV2{Exact: exact, F1: f1, Total: 5,
		HasAnsExact: hasAnsExact, HasAnsF1: hasAnsF1, HasAnsTotal: 3,
		NoAnsExact: noAnsExact, NoAnsF1: noAnsF1, NoAnsTotal: 2}
}

// withV2Best adds to m the best_* numbers of v2Preds with TestEvaluateTextsV2's
// naProbs, which do not depend on the threshold: exact 80 at -1, F1 96 at 0.5.
func withV2Best(m MetricsV2) MetricsV2 {
	m.BestExact, m.BestExactThresh, m.BestF1, m.BestF1Thresh, m.HasBest = 80, -1, 96, 0.5, true
	return m
}

func assertMetricsV2(t *testing.T, want, got MetricsV2) {
	t.Helper()
	for _, f := range []struct {
		name      string
		want, got float64
	}{
		{"exact", want.Exact, got.Exact}, {"f1", want.F1, got.F1},
		{"HasAns_exact", want.HasAnsExact, got.HasAnsExact}, {"HasAns_f1", want.HasAnsF1, got.HasAnsF1},
		{"NoAns_exact", want.NoAnsExact, got.NoAnsExact}, {"NoAns_f1", want.NoAnsF1, got.NoAnsF1},
		{"best_exact", want.BestExact, got.BestExact}, {"best_exact_thresh", want.BestExactThresh, got.BestExactThresh},
		{"best_f1", want.BestF1, got.BestF1}, {"best_f1_thresh", want.BestF1Thresh, got.BestF1Thresh},
	} {
		assert.InDelta(t, f.want, f.got, 1e-9, f.name)
	}
	assert.Equal(t, [5]any{want.Total, want.HasAnsTotal, want.NoAnsTotal, want.HasBest, want.Missing},
		[5]any{got.Total, got.HasAnsTotal, got.NoAnsTotal, got.HasBest, got.Missing}, "totals, HasBest, Missing")
}

// TestMetricsV2JSON: the script's keys in its order, sections only when
// they apply.
func TestMetricsV2JSON(t *testing.T) {
	tests := []struct {
		name string
		m    MetricsV2
		want string
	}{
		{"all", MetricsV2{Exact: 80, F1: 96.5, Total: 5, HasAnsExact: 1, HasAnsF1: 2, HasAnsTotal: 3, NoAnsExact: 3, NoAnsF1: 4, NoAnsTotal: 2,
			BestExact: 5, BestExactThresh: -1.25, BestF1: 6, BestF1Thresh: 0.5, HasBest: true, Missing: 7},
			`{"exact":80,"f1":96.5,"total":5,"HasAns_exact":1,"HasAns_f1":2,"HasAns_total":3,"NoAns_exact":3,"NoAns_f1":4,"NoAns_total":2,` +
				`"best_exact":5,"best_exact_thresh":-1.25,"best_f1":6,"best_f1_thresh":0.5}`},
		{"only answerable, no probabilities", MetricsV2{Exact: 50, F1: 60, Total: 2, HasAnsExact: 50, HasAnsF1: 60, HasAnsTotal: 2},
			`{"exact":50,"f1":60,"total":2,"HasAns_exact":50,"HasAns_f1":60,"HasAns_total":2}`},
		{"only unanswerable", MetricsV2{Exact: 0, F1: 0, Total: 1, NoAnsTotal: 1},
			`{"exact":0,"f1":0,"total":1,"NoAns_exact":0,"NoAns_f1":0,"NoAns_total":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.m)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
			var back MetricsV2
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.m.Exact, back.Exact)
			assert.Equal(t, tc.m.NoAnsTotal, back.NoAnsTotal)
		})
	}
	_, err := json.Marshal(MetricsV2{Exact: math.NaN()})
	assert.ErrorContains(t, err, "metrics exact")
}

// TestEvaluateV2Predictions: EvaluateV2 takes the texts and null odds of
// Postprocess's predictions; without null odds there are no best_* numbers.
func TestEvaluateV2Predictions(t *testing.T) {
	odds := func(v float64) *float64 { return &v }
	var preds []Prediction
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		preds = append(preds, Prediction{ID: id, Candidate: Candidate{Text: v2Preds[id]}})
	}
	m := EvaluateV2(preds, v2Examples)
	assert.False(t, m.HasBest)
	assert.InDelta(t, 60, m.Exact, 1e-12)
	for i, v := range []float64{-2, 0.5, 3, 1.5, -1} {
		preds[i].NullOdds = odds(v)
	}
	m = EvaluateV2(preds, v2Examples)
	assert.True(t, m.HasBest)
	assert.InDelta(t, 80, m.Exact, 1e-12)
	assert.Equal(t, 0.5, m.BestF1Thresh)
}

// TestEvaluateUnanswerableV1: Evaluate (v1.1) scores a question without
// gold answers as SQuAD 2.0 does instead of failing: 1 for "", else 0.
func TestEvaluateUnanswerableV1(t *testing.T) {
	exs := []Example{{ID: "u"}, {ID: "v"}, {ID: "a", Answers: Answers{Text: []string{"cat"}, AnswerStart: []int{0}}}}
	m := EvaluateTexts(map[string]string{"u": "", "v": "dog", "a": "the cat"}, exs)
	assert.Equal(t, Metrics{ExactMatch: 200.0 / 3, F1: 200.0 / 3, N: 3}, m)
}

// TestWritePredictionFiles: predictions.json, nbest_predictions.json and
// null_odds.json as HF writes them: keys in the predictions' order, text
// unescaped; null_odds.json only with null odds, nbest_predictions.json only
// with n-best candidates.
func TestWritePredictionFiles(t *testing.T) {
	odds := func(v float64) *float64 { return &v }
	preds := []Prediction{
		{ID: "z", Candidate: Candidate{Text: "€5 <b> & co", StartLogit: 1.5, EndLogit: -0.25, Score: 0.75},
			NBest:    []Candidate{{Text: "€5 <b> & co", StartLogit: 1.5, EndLogit: -0.25, Score: 0.75}, {Text: "", Start: -1, End: -1, StartLogit: 0.5, EndLogit: 0.5, Score: 0.25}},
			NullOdds: odds(-0.25)},
		{ID: "a", Candidate: Candidate{Text: "", Start: -1, End: -1}, NullOdds: odds(2.5)},
	}
	dir := t.TempDir()
	require.NoError(t, WritePredictionFiles(dir, preds))
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "{\n    \"z\": \"€5 <b> & co\",\n    \"a\": \"\"\n}\n", read(PredictionsFile))
	assert.Equal(t, "{\n    \"z\": -0.25,\n    \"a\": 2.5\n}\n", read(NullOddsFile))
	var nbest map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte(read(NBestPredictionsFile)), &nbest))
	assert.Equal(t, []map[string]any{
		{"start_logit": 1.5, "end_logit": -0.25, "text": "€5 <b> & co", "probability": 0.75},
		{"start_logit": 0.5, "end_logit": 0.5, "text": "", "probability": 0.25},
	}, nbest["z"])
	assert.Equal(t, []map[string]any{}, nbest["a"])

	v1 := t.TempDir()
	require.NoError(t, WritePredictionFiles(v1, []Prediction{{ID: "x", Candidate: Candidate{Text: "y"}}}))
	assert.NoFileExists(t, filepath.Join(v1, NullOddsFile))
	assert.FileExists(t, filepath.Join(v1, PredictionsFile))
	// Predictions without n-best candidates (loraqa eval's, from the
	// engine's answers) write no nbest_predictions.json.
	assert.NoFileExists(t, filepath.Join(v1, NBestPredictionsFile))
	assert.FileExists(t, filepath.Join(dir, NBestPredictionsFile))

	empty := t.TempDir()
	require.NoError(t, WritePredictionFiles(empty, nil))
	b, err := os.ReadFile(filepath.Join(empty, PredictionsFile))
	require.NoError(t, err)
	assert.Equal(t, "{}\n", string(b))

	preds[1].NullOdds = odds(math.NaN())
	err = WritePredictionFiles(t.TempDir(), preds)
	assert.ErrorContains(t, err, `null_odds.json: prediction 1 ("a")`)
	assert.ErrorContains(t, err, "NaN")
}

// TestMetricsV2JSONRoundTrip: MetricsV2 reads back what it writes (a
// training run's evaluations in trainer_state.json and metrics.jsonl),
// HasBest included; Missing is not written.
func TestMetricsV2JSONRoundTrip(t *testing.T) {
	for _, m := range []MetricsV2{
		{Exact: 80, F1: 96.5, Total: 5, HasAnsExact: 1, HasAnsF1: 2, HasAnsTotal: 3, NoAnsExact: 3, NoAnsF1: 4, NoAnsTotal: 2,
			BestExact: 5, BestExactThresh: -1.25, BestF1: 6, BestF1Thresh: 0.5, HasBest: true},
		{Exact: 50, F1: 60, Total: 2, HasAnsExact: 50, HasAnsF1: 60, HasAnsTotal: 2},
	} {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		var back MetricsV2
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, m, back, "%s", b)
	}
	var m MetricsV2
	assert.Error(t, json.Unmarshal([]byte(`{"exact": "x"}`), &m))
}
