package data

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildDatasetJoinsAnswers(t *testing.T) {
	r := &ReadResult{Pairs: []Pair{
		{ID: "p1", Question: "Price?", Answer: "€5"},
		{ID: "p2", Question: "Again?", Answer: "€5"},
		{ID: "p3", Question: "Who?", Answer: "Beyoncé’s band"},
		{ID: "p4", Question: "Which?", Answer: "band"},
	}}
	tests := []struct {
		sep, context string
		starts       []int
	}{
		{"", "€5 €5 Beyoncé’s band band", []int{0, 3, 6, 21}},
		{" | ", "€5 | €5 | Beyoncé’s band | band", []int{0, 5, 10, 27}},
		{"\n", "€5\n€5\nBeyoncé’s band\nband", []int{0, 3, 6, 21}},
	}
	for _, tc := range tests {
		t.Run(tc.sep, func(t *testing.T) {
			exs := BuildDataset(r, BuildOptions{Separator: tc.sep})
			require.Len(t, exs, 4)
			for i, ex := range exs {
				assert.Equal(t, tc.context, ex.Context)
				assert.Equal(t, r.Pairs[i].ID, ex.ID)
				assert.Equal(t, r.Pairs[i].Question, ex.Question)
				assert.Equal(t, []int{tc.starts[i]}, ex.Answers.AnswerStart, "answer %d starts at its own occurrence", i)
				assert.NoError(t, ex.CheckAnswers())
			}
			assert.Equal(t, 1, CountContexts(exs))
		})
	}
}

func TestBuildDatasetKeepsContexts(t *testing.T) {
	given := []Example{
		{ID: "a", Question: "q", Context: "ctx one", Answers: Answers{Text: []string{"one"}, AnswerStart: []int{4}}},
		{ID: "b", Question: "q", Context: "ctx two", Answers: Answers{Text: []string{"two"}, AnswerStart: []int{4}}},
	}
	r := &ReadResult{Examples: given, Pairs: []Pair{{ID: "p", Question: "q", Answer: "x"}}}
	exs := BuildDataset(r, BuildOptions{})
	require.Len(t, exs, 3)
	assert.Equal(t, given, exs[:2])
	assert.Equal(t, "x", exs[2].Context)
	assert.Equal(t, 3, CountContexts(exs))
}

func TestRuneSpan(t *testing.T) {
	s := "a€é’b"
	tests := []struct {
		start, end int
		want       string
		ok         bool
	}{
		{0, 1, "a", true}, {1, 3, "€é", true}, {3, 5, "’b", true}, {5, 5, "", true},
		{0, 5, s, true}, {2, 2, "", true}, {4, 6, "", false}, {-1, 1, "", false}, {3, 2, "", false},
	}
	for _, tc := range tests {
		got, ok := runeSpan(s, tc.start, tc.end)
		assert.Equal(t, tc.ok, ok, "[%d:%d]", tc.start, tc.end)
		assert.Equal(t, tc.want, got, "[%d:%d]", tc.start, tc.end)
		if ok {
			assert.Equal(t, tc.end-tc.start, utf8.RuneCountInString(got))
		}
	}
}

func TestCheckAnswers(t *testing.T) {
	ex := Example{ID: "x", Context: "naïve €5", Answers: Answers{Text: []string{"€5", "naïve"}, AnswerStart: []int{6, 0}}}
	require.NoError(t, ex.CheckAnswers())
	ex.Answers.AnswerStart[0] = 7 // a byte offset would be 8; code point 6 is right
	assert.ErrorContains(t, ex.CheckAnswers(), `answer 0 "€5" is not at answer_start 7`)
	ex.Answers.AnswerStart = ex.Answers.AnswerStart[:1]
	assert.ErrorContains(t, ex.CheckAnswers(), "2 answer texts but 1 answer starts")
}
