package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
)

// officialV2Keys are evaluate-v2.0.py's keys, in its order.
var officialV2Keys = []string{"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
	"NoAns_exact", "NoAns_f1", "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"}

// jsonKeys are the keys of the JSON object s, in order.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	return keys
}

// readJSONFile decodes dir/name into v.
func readJSONFile(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// loraqa eval on SQuAD 2.0 data prints the official evaluation's keys and
// writes them with predictions.json (id → text, "" for no answer) and
// null_odds.json: a question is answered "" exactly when its null odds
// exceed the threshold, and a threshold below every null odds (above
// them) answers every question "" (none); with SQuAD 2.0 off the output is
// SQuAD 1.1's.
func TestEvalSQuAD2(t *testing.T) {
	base, adapter := tinyBERTAdapter(t)
	sample := testutil.SQuAD2Sample(t, 4) // 12 questions, 4 unanswerable
	args := []string{"--model", base, "--adapter", adapter, "--device", "cpu", "--data", sample, "--json"}
	for _, tc := range []struct {
		name      string
		extra     []string
		threshold float64
		allEmpty  bool
		noneEmpty bool
	}{
		{"auto on unanswerable data, threshold 0", nil, 0, false, false},
		{"threshold below every null odds", []string{"--null-score-diff-threshold", "-1e6"}, -1e6, true, false},
		{"threshold above every null odds", []string{"--version-2-with-negative", "true", "--null-score-diff-threshold=1e6"}, 1e6, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			out, err := stdout(t, func() error {
				return runEval(context.Background(), append(append(append([]string(nil), args...), "--output-dir", dir), tc.extra...))
			})
			require.NoError(t, err)
			assert.Equal(t, officialV2Keys, jsonKeys(t, out))
			var m data.MetricsV2
			require.NoError(t, json.Unmarshal([]byte(out), &m))
			assert.Equal(t, 12, m.Total)
			assert.Equal(t, 8, m.HasAnsTotal)
			assert.Equal(t, 4, m.NoAnsTotal)
			results, err := os.ReadFile(filepath.Join(dir, evalResultsFile))
			require.NoError(t, err)
			assert.JSONEq(t, out, string(results))

			var preds map[string]string
			var odds map[string]float64
			readJSONFile(t, dir, data.PredictionsFile, &preds)
			readJSONFile(t, dir, data.NullOddsFile, &odds)
			assert.NoFileExists(t, filepath.Join(dir, data.NBestPredictionsFile))
			require.Len(t, preds, 12)
			require.Len(t, odds, 12)
			empty := 0
			for id, text := range preds {
				require.Contains(t, odds, id)
				assert.Equal(t, odds[id] > tc.threshold, text == "", "%s: %q with null odds %g", id, text, odds[id])
				if text == "" {
					empty++
				}
			}
			switch {
			case tc.allEmpty:
				assert.Equal(t, 12, empty)
				assert.Equal(t, 100.0, m.NoAnsExact)
				assert.Equal(t, 0.0, m.HasAnsExact)
			case tc.noneEmpty:
				assert.Equal(t, 0, empty)
				assert.Equal(t, 0.0, m.NoAnsExact)
			}
		})
	}
	t.Run("off: SQuAD 1.1's output", func(t *testing.T) {
		out, err := stdout(t, func() error {
			return runEval(context.Background(), append(append([]string(nil), args...), "--version-2-with-negative", "false"))
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"exact_match", "f1", "n"}, jsonKeys(t, out))
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, extra := range [][]string{{"--version-2-with-negative", "maybe"}, {"--null-score-diff-threshold", "NaN"}, {"--null-score-diff-threshold", "x"}} {
			_, err := stdout(t, func() error { return runEval(context.Background(), append(append([]string(nil), args...), extra...)) })
			require.Error(t, err, "%v", extra)
			assert.ErrorContains(t, err, strings.TrimPrefix(extra[0], "--"))
		}
	})
}

// loraqa predict: an abstaining answer is "" with no_answer, null_score and
// best_span_score; the threshold saved with the adapter is used unless
// --null-score-diff-threshold gives another; a plain adapter's answer has
// exactly the keys it always had.
func TestPredictSQuAD2NoAnswer(t *testing.T) {
	base, adapter := tinyBERTAdapter(t)
	args := []string{"--model", base, "--device", "cpu", "--question", "who is the ceo of acme?", "--context", "alice works at acme."}
	predict := func(dir string, extra ...string) map[string]any {
		t.Helper()
		out, err := stdout(t, func() error {
			return runPredict(context.Background(), append(append(append([]string(nil), args...), "--adapter", dir), extra...))
		})
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &m), out)
		return m
	}
	plain := predict(adapter)
	assert.ElementsMatch(t, []string{"answer", "score", "start", "end"}, keysOf(plain))

	d, err := peft.OpenDir(adapter)
	require.NoError(t, err)
	d.SQuAD2 = &peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: -1e6, ThresholdFrom: peft.ThresholdBestF1}
	saved := filepath.Join(t.TempDir(), "v2")
	require.NoError(t, d.Write(saved))

	for _, tc := range []struct {
		name    string
		dir     string
		extra   []string
		abstain bool
	}{
		{"saved threshold", saved, nil, true},
		{"given threshold beats the saved one", saved, []string{"--null-score-diff-threshold", "1e6"}, false},
		{"turned on over a plain adapter", adapter, []string{"--version-2-with-negative", "true", "--null-score-diff-threshold", "-1e6"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := predict(tc.dir, tc.extra...)
			assert.Contains(t, m, "null_score")
			assert.Contains(t, m, "best_span_score")
			if tc.abstain {
				assert.Equal(t, "", m["answer"])
				assert.Equal(t, true, m["no_answer"])
				assert.Equal(t, -1.0, m["start"])
			} else {
				assert.NotEmpty(t, m["answer"])
				assert.NotContains(t, m, "no_answer")
			}
		})
	}
	// Turned off over an adapter saved with SQuAD 2.0: the plain answer.
	assert.Equal(t, plain, predict(saved, "--version-2-with-negative", "false"))
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// `loraqa train` on SQuAD 2.0 data (auto) saves loraqa_squad2.json with the
// best_f1_thresh of its evaluation and logs squad_v2 numbers; `loraqa eval`
// of that adapter then answers by the saved threshold and prints the
// official keys.
func TestTrainCommandSQuAD2(t *testing.T) {
	base := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	sample := testutil.SQuAD2Sample(t, 8)
	out := t.TempDir()
	adapter := filepath.Join(out, "adapter")
	t.Setenv("BASE_QA_MODEL", base)
	t.Setenv("FINE_TUNED_ADAPTER_PATH", adapter)
	_, err := stderr(t, func() error {
		return runTrain(context.Background(), []string{
			"--set", "data.input=" + sample, "--set", "data.max_seq_length=64", "--set", "data.doc_stride=32",
			"--set", "train.epochs=2", "--set", "train.learning_rate=1e-3",
			"--set", "output_dir=" + filepath.Join(out, "run"), "--set", "device=cpu",
		})
	})
	require.NoError(t, err)
	d, err := peft.OpenDir(adapter)
	require.NoError(t, err)
	require.NotNil(t, d.SQuAD2, "loraqa_squad2.json saved")
	assert.True(t, d.SQuAD2.Version2WithNegative)
	assert.Equal(t, peft.ThresholdBestF1, d.SQuAD2.ThresholdFrom)

	b, err := os.ReadFile(filepath.Join(out, "run", "metrics.jsonl"))
	require.NoError(t, err)
	var threshs []float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Type    string          `json:"type"`
			SQuADv2 *data.MetricsV2 `json:"squad_v2"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		if rec.Type == "eval" {
			require.NotNil(t, rec.SQuADv2, "%s", line)
			assert.Equal(t, officialV2Keys, jsonKeys(t, string(must(json.Marshal(rec.SQuADv2)))))
			threshs = append(threshs, rec.SQuADv2.BestF1Thresh)
		}
	}
	require.Len(t, threshs, 2)
	assert.Contains(t, threshs, d.SQuAD2.NullScoreDiffThreshold, "the saved threshold is an evaluation's best_f1_thresh")

	var evalOut string
	logs, err := stderr(t, func() error {
		var err error
		evalOut, err = stdout(t, func() error {
			return runEval(context.Background(), []string{"--adapter", adapter, "--model", base, "--device", "cpu", "--data", sample})
		})
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, officialV2Keys, jsonKeys(t, evalOut))
	assert.Contains(t, logs, "saved with the adapter")
	assert.Contains(t, logs, fmt.Sprintf("null_score_diff_threshold %.6g", d.SQuAD2.NullScoreDiffThreshold))
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
