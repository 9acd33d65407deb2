package train_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/train"
)

// readExamples reads a QA file as `loraqa train` does.
func readExamples(t *testing.T, path string) []data.Example {
	t.Helper()
	rr, err := data.ReadFile(path, "auto")
	require.NoError(t, err)
	return data.BuildDataset(rr, data.BuildOptions{})
}

// TestRunSQuAD2SavesThreshold: train.Run on SQuAD 2.0 data (a third of the
// questions unanswerable) evaluates with the official SQuAD 2.0 evaluation,
// logs its numbers in metrics.jsonl, and saves loraqa_squad2.json with the
// best_f1_thresh of the evaluation of the adapter it saves (the best
// epoch's, load_best_model_at_end); with SQuAD 2.0 off, or on data where
// every question has an answer (auto), none of it.
func TestRunSQuAD2SavesThreshold(t *testing.T) {
	v2 := readExamples(t, testutil.SQuAD2Sample(t, 6))
	require.Equal(t, 6, data.CountUnanswerable(v2))
	var v1 []data.Example
	for _, ex := range v2 {
		if ex.HasAnswer() {
			v1 = append(v1, ex)
		}
	}
	base := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	for _, tc := range []struct {
		name, setting string
		examples      []data.Example
		wantV2        bool
	}{
		{"SQuAD 2.0, auto", data.Version2Auto, v2, true},
		{"SQuAD 2.0, true", data.Version2On, v2, true},
		{"SQuAD 2.0 data, false", data.Version2Off, v2, false},
		{"SQuAD 1.1 data, auto", "", v1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := train.DefaultOptions()
			opts.Epochs, opts.LR, opts.BatchSize, opts.LogEvery = 2, 5e-3, 8, 1
			opts.OutputDir = t.TempDir()
			fo := data.DefaultFeatureOptions()
			fo.MaxSeqLength, fo.DocStride = 64, 32
			out := filepath.Join(t.TempDir(), "adapter")
			st, err := train.Run(context.Background(), train.Job{
				Base: base, Device: gotch.CPU, Train: tc.examples, Test: tc.examples, Features: fo,
				Version2WithNegative: tc.setting, LoRA: peft.DefaultConfig(), Options: opts, Out: out,
			})
			require.NoError(t, err)
			require.Len(t, st.Evals, 2)

			recs, err := train.ReadMetrics(opts.OutputDir)
			require.NoError(t, err)
			var evals []train.MetricsRecord
			for _, r := range recs {
				if r.Type == "eval" {
					evals = append(evals, r)
				}
			}
			require.Len(t, evals, 2)
			d, err := peft.OpenDir(out)
			require.NoError(t, err)
			_, statErr := os.Stat(filepath.Join(out, peft.SQuAD2File))
			if !tc.wantV2 {
				assert.Nil(t, d.SQuAD2)
				assert.ErrorIs(t, statErr, os.ErrNotExist)
				for _, r := range evals {
					assert.Nil(t, r.SQuADv2)
				}
				return
			}
			require.NoError(t, statErr)
			for i, r := range evals {
				m := r.SQuADv2
				require.NotNil(t, m, "eval line %d carries squad_v2", i)
				assert.Equal(t, 18, m.Total)
				assert.Equal(t, 12, m.HasAnsTotal)
				assert.Equal(t, 6, m.NoAnsTotal)
				assert.True(t, m.HasBest)
				// exact_match, f1 and n are the official exact, f1, total.
				assert.Equal(t, m.Exact, r.ExactMatch)
				assert.Equal(t, m.F1, r.F1)
				assert.Equal(t, m.Total, r.N)
				assert.Equal(t, *m, *st.Evals[i].SQuADv2)
			}
			// The adapter saved is the best checkpoint's: the evaluation
			// with the best F1 (the first on ties, as HF keeps it).
			best := st.Evals[0]
			if st.Evals[1].F1 > best.F1 {
				best = st.Evals[1]
			}
			require.NotNil(t, d.SQuAD2)
			assert.Equal(t, peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: best.SQuADv2.BestF1Thresh, ThresholdFrom: peft.ThresholdBestF1}, *d.SQuAD2)

			// The engine serves the adapter saved with that threshold, and
			// the official evaluation of its answers finds it again (up to
			// float32 rounding of other batch sizes).
			o := engine.DefaultOptions()
			o.Model, o.Device = base, gotch.CPU
			o.Adapters = []engine.NamedAdapter{{Name: "a", Dir: out}}
			e, err := engine.Load(context.Background(), o)
			require.NoError(t, err)
			defer e.Close()
			on, th, err := e.Version2("a")
			require.NoError(t, err)
			assert.True(t, on)
			assert.Equal(t, d.SQuAD2.NullScoreDiffThreshold, th)
			qs := make([]engine.Query, len(tc.examples))
			for i, ex := range tc.examples {
				qs[i] = engine.Query{ID: ex.ID, Question: ex.Question, Context: ex.Context}
			}
			rs, err := e.Predict(context.Background(), qs)
			require.NoError(t, err)
			texts, odds := map[string]string{}, map[string]float64{}
			for _, r := range rs {
				require.NotNil(t, r.NullOdds)
				texts[r.ID], odds[r.ID] = r.Answers[0].Answer, *r.NullOdds
				assert.Equal(t, *r.NullOdds > th, r.Answers[0].NoAnswer, "%s abstains by the saved threshold", r.ID)
			}
			m := data.EvaluateTextsV2(texts, odds, tc.examples, data.DefaultNAProbThresh)
			assert.InDelta(t, th, m.BestF1Thresh, 1e-3)
			assert.InDelta(t, best.SQuADv2.BestF1, m.BestF1, 1e-9)
		})
	}
}
