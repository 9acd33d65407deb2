package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/internal/trained"
	"github.com/loraqa/loraqa/peft"
)

// tinyBERTAdapter is the committed tiny BERT fixture's base and a copy of
// its adapter with a small vocab.txt (testutil.TinyBERT).
func tinyBERTAdapter(t *testing.T) (base, adapter string) {
	return testutil.TinyBERT(t, "the", "who", "works", "at", "acme", ".", "?")
}

// stdout runs fn with os.Stdout captured.
func stdout(t *testing.T, fn func() error) (string, error) { return capture(t, &os.Stdout, fn) }

// stderr runs fn with os.Stderr captured.
func stderr(t *testing.T, fn func() error) (string, error) { return capture(t, &os.Stderr, fn) }

// capture runs fn with *f (os.Stdout or os.Stderr) writing into a pipe, and
// returns what it wrote.
func capture(t *testing.T, f **os.File, fn func() error) (string, error) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := *f
	*f = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	err = fn()
	*f = old
	w.Close()
	return string(<-done), err
}

// Every command's -h prints its usage once, to stderr, and asks for exit 0
// (errHelp).
func TestHelpPrintsUsageOnce(t *testing.T) {
	require.NotEmpty(t, commands)
	first := map[string]string{"bench": "infer", "config": "show"} // commands that take a mode first
	for name, c := range commands {
		t.Run(name, func(t *testing.T) {
			args := []string{"-h"}
			if m, ok := first[name]; ok {
				args = []string{m, "-h"}
			}
			out, err := stderr(t, func() error { return c.run(context.Background(), args) })
			require.ErrorIs(t, err, errHelp)
			assert.Equal(t, 1, strings.Count(out, "usage: loraqa "), out)
		})
	}
}

// predict without window flags on a model of 64 positions: the windows
// default to 64 with stride 32 (the old fixed 384/128 was refused), the
// adapter's recorded windows win over that, and windows asked for
// explicitly that cannot work are still refused.
func TestPredictDefaultWindows(t *testing.T) {
	base, adapter := tinyBERTAdapter(t)
	context1 := "alice works at acme. " + strings.Repeat("bob works at the acme works. ", 10)
	args := []string{"--model", base, "--adapter", adapter, "--device", "cpu", "--question", "who works at acme?", "--context", context1}
	run := func(extra ...string) (string, error) {
		return stdout(t, func() error {
			return runPredict(context.Background(), append(append([]string(nil), args...), extra...))
		})
	}
	explicit := map[string]string{}
	for _, w := range [][]string{{"64", "32"}, {"48", "16"}} {
		out, err := run("--max-seq-length", w[0], "--doc-stride", w[1])
		require.NoError(t, err)
		explicit[w[0]] = out
	}
	require.NotEqual(t, explicit["64"], explicit["48"], "the windows change nothing: the test would prove nothing")
	cases := []struct {
		name    string
		extra   []string
		trained *peft.Windows
		want    string // the output of these explicit windows
		err     string
	}{
		{"pipeline rule", nil, nil, explicit["64"], ""},
		{"trained windows", nil, &peft.Windows{MaxSeqLength: 48, DocStride: 16}, explicit["48"], ""},
		{"explicit stride that leaves no room", []string{"--doc-stride", "62"}, nil, "", "doc_stride 62 leaves no room"},
		{"explicit window past the positions", []string{"--max-seq-length", "128"}, nil, "", "max_seq_length 128 is longer than the model's max_position_embeddings 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(adapter, peft.WindowsFile))
			if tc.trained != nil {
				require.NoError(t, atomicfile.WriteJSON(filepath.Join(adapter, peft.WindowsFile), *tc.trained))
			}
			out, err := run(tc.extra...)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			var a engine.Answer
			require.NoError(t, json.Unmarshal([]byte(out), &a), "%s", out)
			require.GreaterOrEqual(t, a.Start, 0)
			assert.Equal(t, a.Answer, context1[a.Start:a.End], "an answer that is not a span of the context")
			assert.Equal(t, tc.want, out)
		})
	}
}

// predict --passage (repeated) or --passages-file answers from several
// passages: each answer names its passage, and its text is that passage's.
func TestPredictPassages(t *testing.T) {
	base, adapter := tinyBERTAdapter(t)
	passages := []string{"bob lives in paris.", "alice works at acme.", "the acme works."}
	args := []string{"--model", base, "--adapter", adapter, "--device", "cpu", "--question", "who works at acme?", "--top-k", "4"}
	for _, p := range passages {
		args = append(args, "--passage", p)
	}
	out, err := stdout(t, func() error { return runPredict(context.Background(), args) })
	require.NoError(t, err)
	var got []struct {
		Answer  string  `json:"answer"`
		Start   int     `json:"start"`
		End     int     `json:"end"`
		Score   float64 `json:"score"`
		Passage *int    `json:"passage"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, 4)
	for _, a := range got {
		require.NotNil(t, a.Passage, out)
		assert.Equal(t, a.Answer, string([]rune(passages[*a.Passage])[a.Start:a.End]))
	}

	file := filepath.Join(t.TempDir(), "passages.json")
	b, err := json.Marshal(passages)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o644))
	fromFile, err := stdout(t, func() error {
		return runPredict(context.Background(), []string{"--model", base, "--adapter", adapter, "--device", "cpu", "--question", "who works at acme?", "--top-k", "4", "--passages-file", file})
	})
	require.NoError(t, err)
	assert.JSONEq(t, out, fromFile)

	// SQuAD 2.0 with a threshold below every passage's null odds: the answer
	// is the explicit no-answer, naming the passage closest to answering.
	abstain, err := stdout(t, func() error {
		return runPredict(context.Background(), append(append([]string{}, args...), "--version-2-with-negative", "true", "--null-score-diff-threshold", "-1e6"))
	})
	require.NoError(t, err)
	var none []map[string]any
	require.NoError(t, json.Unmarshal([]byte(abstain), &none), abstain)
	require.Len(t, none, 1, "the null answer alone")
	assert.Equal(t, "", none[0]["answer"])
	assert.Equal(t, true, none[0]["no_answer"])
	assert.Contains(t, none[0], "passage")
	assert.Contains(t, none[0], "null_score")
	assert.Contains(t, none[0], "best_span_score")

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"passages": 1}`), 0o644))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--passages-file", bad}, "bad.json: want a JSON array of strings"},
		{[]string{"--passage", "a.", "--context", "b."}, "not both"},
	} {
		_, err := stdout(t, func() error {
			return runPredict(context.Background(), append([]string{"--model", base, "--adapter", adapter, "--question", "who?"}, c.args...))
		})
		assert.ErrorContains(t, err, c.want)
	}
}

// predict over passages with an adapter that knows its data
// (internal/trained): the answer comes from the passage that holds it, and
// a question no passage answers gets the explicit no-answer.
func TestPredictPassagesTrained(t *testing.T) {
	base, adapter := trained.SQuAD2Adapter(t)
	run := func(question string) map[string]any {
		out, err := stdout(t, func() error {
			return runPredict(context.Background(), []string{"--model", base, "--adapter", adapter, "--device", "cpu",
				"--question", question, "--passage", trained.Distractor, "--passage", trained.RevenuePassage})
		})
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		return got
	}
	got := run(trained.Revenue)
	assert.Equal(t, trained.RevenueAnswer, got["answer"])
	assert.Equal(t, 1.0, got["passage"])
	assert.NotContains(t, got, "no_answer")
	got = run(trained.Unanswerable)
	assert.Equal(t, "", got["answer"])
	assert.Equal(t, true, got["no_answer"])
}

// TestEvaluateV2ScoresThePredictionsAsMade: eval's SQuAD 2.0 exact and F1
// score the answers the model gave at its null_score_diff_threshold. With
// the script's default --na-prob-thresh 1, an answer given at null odds
// between 1 and a larger threshold would be scored as a blank.
func TestEvaluateV2ScoresThePredictionsAsMade(t *testing.T) {
	ex := []data.Example{
		{ID: "a", Answers: data.Answers{Text: []string{"$10.0 million"}, AnswerStart: []int{0}}},
		{ID: "u"}, // unanswerable
	}
	texts := map[string]string{"a": "$10.0 million", "u": ""}
	for _, tc := range []struct {
		name      string
		threshold float64
		odds      map[string]float64 // consistent with texts at the threshold
		scriptDef float64            // exact at the script's default na_prob_thresh
	}{
		{"threshold above 1", 5, map[string]float64{"a": 3, "u": 6}, 50},
		{"threshold below 1", -0.5, map[string]float64{"a": -2, "u": 0.4}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := evaluateV2(texts, tc.odds, ex, tc.threshold)
			assert.Equal(t, 100.0, m.Exact)
			assert.Equal(t, 100.0, m.HasAnsExact)
			assert.Equal(t, 100.0, m.NoAnsExact)
			assert.Equal(t, tc.scriptDef, data.EvaluateTextsV2(texts, tc.odds, ex, data.DefaultNAProbThresh).Exact)
		})
	}
}
