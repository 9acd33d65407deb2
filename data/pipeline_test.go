package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPipelineAnswersMatchHF: on 120 synthetic SQuAD 2.0 questions cut into
// small windows (several per question) with random logits, PipelineAnswers
// gives the answers of HF's question-answering pipeline
// (QuestionAnsweringPipeline.postprocess of transformers 4.57.6, align_to_words
// off) for each set of options: the same texts and offsets in the same
// order, scores within 1e-6 relative (both in float32, summed differently).
func TestPipelineAnswersMatchHF(t *testing.T) {
	path, tok := syntheticSQuAD2(t, 120, 5)
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	feats, _, err := Featurize(tok, r.Examples, FeatureOptions{MaxSeqLength: 24, DocStride: 6, Mode: ModeWindows, NegativeFraction: 1})
	require.NoError(t, err)
	require.Greater(t, len(feats), 3*len(r.Examples), "several windows per question")
	starts, ends := randomLogits(feats, unanswerableIDs(r.Examples), 9, 2)
	runs := []PipelineOptions{
		{TopK: 1, MaxAnswerLength: 15},
		{TopK: 1, MaxAnswerLength: 15, HandleImpossibleAnswer: true},
		{TopK: 5, MaxAnswerLength: 3, HandleImpossibleAnswer: true},
		{TopK: 8, MaxAnswerLength: 30},
	}
	type refRun struct {
		TopK       int  `json:"top_k"`
		Impossible bool `json:"handle_impossible_answer"`
		MaxLen     int  `json:"max_answer_len"`
	}
	req := struct {
		Examples    []refExample `json:"examples"`
		Features    []refFeature `json:"features"`
		StartLogits [][]float32  `json:"start_logits"`
		EndLogits   [][]float32  `json:"end_logits"`
		Pipeline    []refRun     `json:"pipeline"`
	}{StartLogits: starts, EndLogits: ends}
	req.Examples, req.Features = refInputs(r.Examples, feats)
	for _, o := range runs {
		req.Pipeline = append(req.Pipeline, refRun{o.TopK, o.HandleImpossibleAnswer, o.MaxAnswerLength})
	}
	var ref struct {
		Pipeline []map[string][]struct {
			Answer string  `json:"answer"`
			Start  int     `json:"start"`
			End    int     `json:"end"`
			Score  float64 `json:"score"`
		} `json:"pipeline"`
	}
	runSquad2Ref(t, req, &ref)
	require.Len(t, ref.Pipeline, len(runs))
	nulls, merged := 0, 0
	for k, o := range runs {
		got, err := PipelineAnswers(r.Examples, feats, starts, ends, o)
		require.NoError(t, err)
		for e, ex := range r.Examples {
			want := ref.Pipeline[k][ex.ID]
			require.Len(t, got[e], len(want), "run %d %s", k, ex.ID)
			for j, w := range want {
				g := got[e][j]
				assert.Equal(t, w.Answer, g.Text, "run %d %s answer %d", k, ex.ID, j)
				if w.Answer != "" {
					assert.Equal(t, [2]int{w.Start, w.End}, [2]int{g.Start, g.End}, "run %d %s answer %d", k, ex.ID, j)
				} else {
					nulls++
				}
				assert.InEpsilon(t, w.Score, g.Score, 1e-6, "run %d %s answer %d", k, ex.ID, j)
			}
			if o.TopK > 1 {
				for _, g := range got[e] {
					merged += len(g.Text) // texts seen: the runs with several answers do list several
				}
			}
		}
	}
	assert.Greater(t, nulls, 20, "the null answer wins some questions")
	assert.Greater(t, merged, 0)

	_, err = PipelineAnswers(r.Examples, feats, starts[:1], ends, runs[0])
	assert.ErrorContains(t, err, "features but 1 start")
	_, err = PipelineAnswers(r.Examples, feats, starts, ends, PipelineOptions{MaxAnswerLength: 3})
	assert.ErrorContains(t, err, "top_k 0")
}
