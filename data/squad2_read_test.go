package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadSQuAD2Unanswerable: a question is unanswerable — kept with no
// answers — when it says is_impossible (whatever answers it lists) or lists
// none; one whose answers were all dropped is still skipped.
func TestReadSQuAD2Unanswerable(t *testing.T) {
	tests := []struct {
		name, qa     string
		kept         bool
		answers      Answers
		skippedWhy   string
		droppedWhy   string
		unanswerable bool
	}{
		{"is_impossible", `{"id": "q", "question": "Q?", "answers": [], "is_impossible": true, "plausible_answers": [{"text": "b", "answer_start": 2}]}`,
			true, Answers{}, "", "", true},
		{"is_impossible wins over answers", `{"id": "q", "question": "Q?", "answers": [{"text": "b", "answer_start": 2}], "is_impossible": true}`,
			true, Answers{}, "", "", true},
		{"no answers, no is_impossible", `{"id": "q", "question": "Q?", "answers": []}`, true, Answers{}, "", "", true},
		{"answers null", `{"id": "q", "question": "Q?", "answers": null}`, true, Answers{}, "", "", true},
		{"is_impossible false", `{"id": "q", "question": "Q?", "answers": [{"text": "b", "answer_start": 2}], "is_impossible": false}`,
			true, Answers{Text: []string{"b"}, AnswerStart: []int{2}}, "", "", false},
		{"every answer misplaced", `{"id": "q", "question": "Q?", "answers": [{"text": "b", "answer_start": 0}]}`,
			false, Answers{}, SkipNoAnswer, DropMisplaced, false},
		{"only an empty answer", `{"id": "q", "question": "Q?", "answers": [{"text": " ", "answer_start": 0}]}`,
			false, Answers{}, SkipNoAnswer, DropEmptyAnswer, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "a b c", "qas": [` + tc.qa + `]}]}]}`
			r, err := Read([]byte(doc), "v2.json", FormatAuto)
			require.NoError(t, err)
			assert.Equal(t, 1, r.Records)
			if !tc.kept {
				assert.Empty(t, r.Examples)
				assert.Equal(t, map[string]int{tc.skippedWhy: 1}, r.Skipped)
				assert.Equal(t, map[string]int{tc.droppedWhy: 1}, r.DroppedAnswers)
				return
			}
			require.Len(t, r.Examples, 1)
			assert.Empty(t, r.Skipped)
			ex := r.Examples[0]
			assert.Equal(t, Example{ID: "q", Title: "T", Question: "Q?", Context: "a b c", Answers: tc.answers}, ex)
			assert.Equal(t, !tc.unanswerable, ex.HasAnswer())
			assert.Equal(t, map[bool]int{true: 1, false: 0}[tc.unanswerable], CountUnanswerable(r.Examples))
			assert.NoError(t, ex.CheckAnswers())
		})
	}
}

// TestUnanswerableHFJSONLRoundTrip: an unanswerable example is written as HF
// datasets' SQuAD 2.0 record (empty lists, never null) and read back as one.
func TestUnanswerableHFJSONLRoundTrip(t *testing.T) {
	exs := []Example{
		{ID: "u", Question: "Who?", Context: "Nobody <here> & there."},
		{ID: "a", Question: "What?", Context: "x y", Answers: Answers{Text: []string{"y"}, AnswerStart: []int{2}}},
	}
	path := filepath.Join(t.TempDir(), "v2.jsonl")
	require.NoError(t, WriteExamplesJSONL(path, exs))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, `{"id":"u","question":"Who?","context":"Nobody <here> & there.","answers":{"text":[],"answer_start":[]}}`+"\n"+
		`{"id":"a","question":"What?","context":"x y","answers":{"text":["y"],"answer_start":[2]}}`+"\n", string(b))
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatHFJSONL, r.Format)
	assert.Empty(t, r.Skipped)
	require.Len(t, r.Examples, 2)
	assert.False(t, r.Examples[0].HasAnswer())
	assert.Equal(t, exs[1], r.Examples[1])
}

// TestPrepareCountsUnanswerable: prepare keeps SQuAD 2.0's unanswerable
// questions in the splits and counts them in report.json.
func TestPrepareCountsUnanswerable(t *testing.T) {
	rep, all := prepareHalves(t, "v2.json", `{"data": [{"paragraphs": [{"context": "a b c d", "qas": [
		{"id": "1", "question": "A?", "answers": [{"text": "a", "answer_start": 0}]},
		{"id": "2", "question": "B?", "answers": [], "is_impossible": true},
		{"id": "3", "question": "C?", "answers": [{"text": "c", "answer_start": 4}]},
		{"id": "4", "question": "D?", "answers": []}]}]}]}`)
	assert.Equal(t, 4, rep.Kept)
	assert.Equal(t, 2, rep.Unanswerable)
	assert.Equal(t, 2, CountUnanswerable(all))
}

// TestFeaturizeUnanswerableAtCLS: every window of an unanswerable question
// is labelled (0, 0), as run_qa's prepare_train_features labels it at the
// CLS index, and the report counts it as no answer, not as lost.
func TestFeaturizeUnanswerableAtCLS(t *testing.T) {
	tok := tinyTokenizer(t)
	exs := []Example{
		{ID: "u", Question: "cat?", Context: "the cat sat on the mat."},
		{ID: "a", Question: "cat?", Context: "the cat sat on the mat.", Answers: Answers{Text: []string{"mat"}, AnswerStart: []int{19}}},
	}
	opts := windowOptions(9, 2)
	feats, rep, err := Featurize(tok, exs, opts)
	require.NoError(t, err)
	n := 0
	for _, f := range feats {
		if f.ExampleID == "u" {
			n++
			assert.Equal(t, [2]int{0, 0}, [2]int{f.StartPosition, f.EndPosition}, "window %d", f.Window)
			assert.Equal(t, tok.CLS(), f.InputIDs[0], "position 0 is [CLS]")
		}
	}
	assert.Equal(t, 3, n)
	assert.Equal(t, 1, rep.NoAnswer)
	assert.Equal(t, 1, rep.AnswersInWindow)
	assert.Zero(t, rep.AnswersLost)
}
