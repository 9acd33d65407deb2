package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// squad2Python is the SQuAD 2.0 reference's python ($LORAQA_SQUAD2_PYTHON, or
// .build/venv-squad2 that scripts/setup-squad2-ref.sh makes and make reference
// runs). Without it the test is skipped, or fails under CI=true or
// LORAQA_REQUIRE_REF=1.
func squad2Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("LORAQA_SQUAD2_PYTHON")
	if py == "" {
		py = filepath.Join(repoRoot(t), ".build", "venv-squad2", "bin", "python")
	}
	if _, err := exec.LookPath(py); err != nil {
		testutil.Missing(t, "SQuAD 2.0 reference python %s not found (run scripts/setup-squad2-ref.sh; make reference does)", py)
	}
	return py
}

// runSquad2Ref sends req to scripts/ref/squad2_ref.py and decodes its answer.
func runSquad2Ref(t *testing.T, req, out any) {
	t.Helper()
	py := squad2Python(t)
	b, err := json.Marshal(req)
	require.NoError(t, err)
	cmd := exec.Command(py, filepath.Join(repoRoot(t), "scripts", "ref", "squad2_ref.py"))
	cmd.Stdin = bytes.NewReader(b)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "squad2_ref.py: %s", stderr.String())
	require.NoError(t, json.Unmarshal(stdout.Bytes(), out), "squad2_ref.py output")
}

// gauss is a normal deviate from r (Box–Muller).
func gauss(r *rng) float64 {
	u := 1 - r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float())
}

// randomLogits draws float32 start and end logits for each feature: the
// tokens N(0, 2), [CLS] N(clsMean, 2); half the time 4 more on a window's
// labelled answer tokens, and 3 more on [CLS] for a question without an
// answer, so that predictions are right often enough for the thresholds to
// matter. No two values of one row are equal (HF's argsort and loraqa's
// stable sort order ties differently).
func randomLogits(feats []Feature, unanswerable map[string]bool, seed uint64, clsMean float64) (starts, ends [][]float32) {
	r := newRNG(seed, 7)
	row := func(n, hint int, hintBoost float64) []float32 {
		for {
			v := make([]float32, n)
			seen := map[float32]bool{}
			dup := false
			for i := range v {
				x := 2 * gauss(r)
				if i == 0 {
					x += clsMean
				}
				if i == hint {
					x += hintBoost
				}
				v[i] = float32(x)
				dup = dup || seen[v[i]]
				seen[v[i]] = true
			}
			if !dup {
				return v
			}
		}
	}
	for _, f := range feats {
		hs, he, boost := -1, -1, 0.0
		switch {
		case f.HasAnswer() && r.intn(2) == 0:
			hs, he, boost = f.StartPosition, f.EndPosition, 4
		case unanswerable[f.ExampleID] && r.intn(2) == 0:
			hs, he, boost = 0, 0, 3
		}
		starts = append(starts, row(len(f.InputIDs), hs, boost))
		ends = append(ends, row(len(f.InputIDs), he, boost))
	}
	return starts, ends
}

// unanswerableIDs is the set of the examples without a gold answer.
func unanswerableIDs(examples []Example) map[string]bool {
	m := map[string]bool{}
	for _, ex := range examples {
		if !ex.HasAnswer() {
			m[ex.ID] = true
		}
	}
	return m
}

// squad2Reference is what squad2_ref.py answers.
type squad2Reference struct {
	Postprocess []struct {
		Predictions map[string]string `json:"predictions"`
		NBest       map[string][]struct {
			StartLogit  float64 `json:"start_logit"`
			EndLogit    float64 `json:"end_logit"`
			Text        string  `json:"text"`
			Probability float64 `json:"probability"`
		} `json:"nbest"`
		NullOdds map[string]float64 `json:"null_odds"`
	} `json:"postprocess"`
	Evaluate []map[string]float64 `json:"evaluate"`
}

// refExample and refFeature are what squad2_ref.py reads of an example and
// of a feature (null offsets outside the context).
type refExample struct {
	ID      string `json:"id"`
	Context string `json:"context"`
}

type refFeature struct {
	ExampleID string    `json:"example_id"`
	Offsets   []*[2]int `json:"offset_mapping"`
}

func refInputs(examples []Example, feats []Feature) ([]refExample, []refFeature) {
	var res []refExample
	var rfs []refFeature
	for _, ex := range examples {
		res = append(res, refExample{ex.ID, ex.Context})
	}
	for _, f := range feats {
		rf := refFeature{ExampleID: f.ExampleID}
		for _, o := range f.Offsets {
			if o == NoOffset {
				rf.Offsets = append(rf.Offsets, nil)
			} else {
				rf.Offsets = append(rf.Offsets, &o)
			}
		}
		rfs = append(rfs, rf)
	}
	return res, rfs
}

// squad2MatchesHF feeds the same float32 logits to loraqa's Postprocess and
// to HF's postprocess_qa_predictions for each set of options, and asserts the
// same predictions, null odds and n best (texts and logits equal,
// probabilities within 1e-6: HF computes them in float32). Then it writes
// loraqa's predictions.json and null_odds.json with WritePredictionFiles and
// asserts that the official evaluation (HF's squad_metrics.squad_evaluate) of
// those files on dataFile gives EvaluateV2's numbers exactly: with the null
// odds at --na-prob-thresh 1 and 0, and with no null odds (all 0).
func squad2MatchesHF(t *testing.T, examples []Example, feats []Feature, starts, ends [][]float32, dataFile string, runs []PostprocessOptions) {
	t.Helper()
	type refRun struct {
		V2        bool    `json:"version_2_with_negative"`
		NBest     int     `json:"n_best_size"`
		MaxLength int     `json:"max_answer_length"`
		Threshold float64 `json:"null_score_diff_threshold"`
	}
	type refEval struct {
		DataFile   string  `json:"data_file"`
		PredFile   string  `json:"pred_file"`
		NAProbFile string  `json:"na_prob_file,omitempty"`
		Thresh     float64 `json:"na_prob_thresh"`
	}
	req := struct {
		Examples    []refExample `json:"examples"`
		Features    []refFeature `json:"features"`
		StartLogits [][]float32  `json:"start_logits"`
		EndLogits   [][]float32  `json:"end_logits"`
		Postprocess []refRun     `json:"postprocess"`
		Evaluate    []refEval    `json:"evaluate"`
	}{StartLogits: starts, EndLogits: ends}
	req.Examples, req.Features = refInputs(examples, feats)

	type goEval struct {
		name string
		m    MetricsV2
	}
	var goPreds [][]Prediction
	var goEvals []goEval
	for k, opts := range runs {
		req.Postprocess = append(req.Postprocess, refRun{opts.Version2WithNegative, opts.NBestSize, opts.MaxAnswerLength, opts.NullScoreDiffThreshold})
		preds, err := Postprocess(examples, feats, starts, ends, opts)
		require.NoError(t, err)
		goPreds = append(goPreds, preds)
		if !opts.Version2WithNegative {
			continue
		}
		dir := filepath.Join(t.TempDir(), fmt.Sprint(k))
		require.NoError(t, WritePredictionFiles(dir, preds))
		texts := map[string]string{}
		zeros := map[string]float64{}
		for _, p := range preds {
			texts[p.ID], zeros[p.ID] = p.Text, 0
		}
		pf, of := filepath.Join(dir, PredictionsFile), filepath.Join(dir, NullOddsFile)
		req.Evaluate = append(req.Evaluate,
			refEval{dataFile, pf, of, DefaultNAProbThresh},
			refEval{dataFile, pf, of, 0},
			refEval{DataFile: dataFile, PredFile: pf, Thresh: DefaultNAProbThresh})
		goEvals = append(goEvals,
			goEval{fmt.Sprintf("run %d, null odds", k), EvaluateV2(preds, examples)},
			goEval{fmt.Sprintf("run %d, null odds, na_prob_thresh 0", k), EvaluateTextsV2(texts, nullOddsOf(preds), examples, 0)},
			goEval{fmt.Sprintf("run %d, no null odds", k), EvaluateTextsV2(texts, zeros, examples, DefaultNAProbThresh)})
	}
	var ref squad2Reference
	runSquad2Ref(t, req, &ref)
	require.Len(t, ref.Postprocess, len(runs))
	require.Len(t, ref.Evaluate, len(goEvals))

	for k, opts := range runs {
		r := ref.Postprocess[k]
		nulls, mismatches := 0, 0
		for _, p := range goPreds[k] {
			ok := assert.Equal(t, r.Predictions[p.ID], p.Text, "run %d (%+v): prediction of %s", k, opts, p.ID)
			if opts.Version2WithNegative {
				require.NotNil(t, p.NullOdds, "run %d: %s", k, p.ID)
				ok = assert.Equal(t, r.NullOdds[p.ID], *p.NullOdds, "run %d: null odds of %s", k, p.ID) && ok
			} else {
				assert.Nil(t, p.NullOdds)
			}
			nb := r.NBest[p.ID]
			if assert.Len(t, p.NBest, len(nb), "run %d: n best of %s", k, p.ID) {
				for i, c := range p.NBest {
					ok = assert.Equal(t, nb[i].Text, c.Text, "run %d: %s n best %d", k, p.ID, i) && ok
					ok = assert.Equal(t, nb[i].StartLogit, float64(c.StartLogit), "run %d: %s n best %d", k, p.ID, i) && ok
					ok = assert.Equal(t, nb[i].EndLogit, float64(c.EndLogit), "run %d: %s n best %d", k, p.ID, i) && ok
					ok = assert.InDelta(t, nb[i].Probability, c.Score, 1e-6, "run %d: %s n best %d", k, p.ID, i) && ok
				}
			}
			if p.Text == "" {
				nulls++
			}
			if !ok {
				mismatches++
			}
			require.Less(t, mismatches, 5, "too many mismatches")
		}
		assert.Equal(t, len(r.Predictions), len(goPreds[k]))
		t.Logf("run %d (n_best %d, max_answer_length %d, version 2 %v, threshold %v): %d predictions as HF's, %d of them \"\"",
			k, opts.NBestSize, opts.MaxAnswerLength, opts.Version2WithNegative, opts.NullScoreDiffThreshold, len(goPreds[k]), nulls)
	}
	for i, ge := range goEvals {
		b, err := json.Marshal(ge.m)
		require.NoError(t, err)
		var got map[string]float64
		require.NoError(t, json.Unmarshal(b, &got))
		assert.Equal(t, ref.Evaluate[i], got, "%s: the official evaluation of loraqa's files", ge.name)
		assert.Zero(t, ge.m.Missing)
	}
	if len(goEvals) > 0 {
		b, _ := json.Marshal(goEvals[0].m)
		t.Logf("%s: %s", goEvals[0].name, b)
	}
}

func nullOddsOf(preds []Prediction) map[string]float64 {
	m := map[string]float64{}
	for _, p := range preds {
		if p.NullOdds != nil {
			m[p.ID] = *p.NullOdds
		}
	}
	return m
}

// squad2Runs are the options squad2MatchesHF compares: HF's defaults, small
// n best and answers with a threshold, a single candidate (many questions
// with no valid span: the "empty" placeholder) with a negative threshold,
// and SQuAD v1 post-processing on the same logits.
var squad2Runs = []PostprocessOptions{
	{NBestSize: 20, MaxAnswerLength: 30, Version2WithNegative: true},
	{NBestSize: 3, MaxAnswerLength: 4, Version2WithNegative: true, NullScoreDiffThreshold: 1.5},
	{NBestSize: 1, MaxAnswerLength: 1, Version2WithNegative: true, NullScoreDiffThreshold: -1},
	{NBestSize: 20, MaxAnswerLength: 30},
}

// syntheticSQuAD2 writes a SQuAD 2.0 JSON file of n questions over random
// contexts from a small vocabulary (about 40% unanswerable; the others with
// one to three gold answers, overlapping, some differing only in articles and
// punctuation) and returns its path and a tokenizer for the vocabulary.
func syntheticSQuAD2(t *testing.T, n int, seed uint64) (string, *Tokenizer) {
	t.Helper()
	words := strings.Fields("the a an cat dog sat ran on under mat rug red blue big small revenue profit " +
		"million billion 2019 2020 fell rose sharply because of costs and sales in europe asia company")
	vocab := map[string]int{}
	for i, w := range append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "$"}, words...) {
		vocab[w] = i
	}
	tok, err := NewTokenizer(vocab, DefaultTokenizerOptions())
	require.NoError(t, err)
	r := newRNG(seed, 1)
	type ans struct {
		Text  string `json:"text"`
		Start int    `json:"answer_start"`
	}
	type qa struct {
		ID           string `json:"id"`
		Question     string `json:"question"`
		Answers      []ans  `json:"answers"`
		IsImpossible bool   `json:"is_impossible"`
	}
	type para struct {
		Context string `json:"context"`
		QAs     []qa   `json:"qas"`
	}
	var paras []para
	for q := 0; q < n; {
		var b strings.Builder
		var starts []int // code point offset of each word
		for w := 0; w < 25+r.intn(30); w++ {
			if w > 0 {
				b.WriteString(" ")
			}
			starts = append(starts, b.Len()) // ASCII: bytes are code points
			b.WriteString(words[r.intn(len(words))])
			if r.intn(8) == 0 {
				b.WriteString([]string{".", ",", "$"}[r.intn(3)])
			}
		}
		ctx := b.String()
		p := para{Context: ctx}
		for k := 0; k < 3+r.intn(4) && q < n; k++ {
			item := qa{ID: fmt.Sprintf("q%03d", q), Question: strings.Join([]string{
				words[r.intn(len(words))], words[r.intn(len(words))], words[r.intn(len(words))]}, " ") + "?"}
			q++
			if r.intn(5) < 2 {
				item.IsImpossible, item.Answers = true, []ans{}
				p.QAs = append(p.QAs, item)
				continue
			}
			first := r.intn(len(starts))
			for a := 0; a < 1+r.intn(3); a++ {
				lo := min(first+a%2, len(starts)-1)
				hi := min(lo+1+r.intn(4), len(starts))
				end := len(ctx)
				if hi < len(starts) {
					end = starts[hi] - 1
				}
				item.Answers = append(item.Answers, ans{ctx[starts[lo]:end], starts[lo]})
			}
			p.QAs = append(p.QAs, item)
		}
		paras = append(paras, p)
	}
	doc := map[string]any{"version": "v2.0", "data": []any{map[string]any{"title": "synthetic", "paragraphs": paras}}}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "synthetic-v2.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path, tok
}

// TestSQuAD2MatchesHF: on 200 synthetic SQuAD 2.0 questions cut into small
// windows (several per question) with random logits, loraqa's SQuAD 2.0
// post-processing gives HF's predictions, null odds and n best, and the
// official evaluation of the files loraqa writes gives EvaluateV2's numbers
// (squad2MatchesHF).
func TestSQuAD2MatchesHF(t *testing.T) {
	path, tok := syntheticSQuAD2(t, 200, 11)
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	require.Len(t, r.Examples, 200, "every question kept (skipped: %v, dropped: %v)", r.Skipped, r.DroppedAnswers)
	none := CountUnanswerable(r.Examples)
	require.Greater(t, none, 40)
	require.Less(t, none, 120)
	feats, rep, err := Featurize(tok, r.Examples, FeatureOptions{MaxSeqLength: 24, DocStride: 6, Mode: ModeWindows, NegativeFraction: 1})
	require.NoError(t, err)
	require.Greater(t, len(feats), 3*len(r.Examples), "several windows per question")
	require.Equal(t, none, rep.NoAnswer)
	starts, ends := randomLogits(feats, unanswerableIDs(r.Examples), 5, 4)
	squad2MatchesHF(t, r.Examples, feats, starts, ends, path, squad2Runs)
}
