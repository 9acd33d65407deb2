package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveVersion2(t *testing.T) {
	answered := []Example{{ID: "a", Answers: Answers{Text: []string{"x"}, AnswerStart: []int{0}}}}
	mixed := []Example{{ID: "u"}, {ID: "v"}}
	tests := []struct {
		name    string
		setting string
		sets    [][]Example
		on      bool
		note    string // substring; "" means no note
	}{
		{"auto, all answered", "auto", [][]Example{answered}, false, ""},
		{"empty is auto", "", [][]Example{answered, answered}, false, ""},
		{"auto, unanswerable in the eval set", "auto", [][]Example{answered, mixed}, true,
			"data.version_2_with_negative: on (auto): 2 of 3 questions have no answer (SQuAD 2.0)"},
		{"Auto, any case", " Auto ", [][]Example{mixed}, true, "on (auto): 2 of 2 questions"},
		{"true with unanswerable", "true", [][]Example{mixed}, true, ""},
		{"true, all answered", "true", [][]Example{answered}, true, "on, but every question has an answer"},
		{"false, all answered", "false", [][]Example{answered}, false, ""},
		{"false with unanswerable", "false", [][]Example{answered, mixed}, false,
			"off, but 2 of 3 questions have no answer: they are trained to point at [CLS], yet every prediction is a span, so they score 0"},
		{"no data", "auto", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			on, note, err := ResolveVersion2(tc.setting, tc.sets...)
			require.NoError(t, err)
			assert.Equal(t, tc.on, on)
			if tc.note == "" {
				assert.Empty(t, note)
			} else {
				assert.Contains(t, note, tc.note)
			}
		})
	}
	_, _, err := ResolveVersion2("maybe", answered)
	assert.EqualError(t, err, `data.version_2_with_negative: "maybe" is not auto, true or false`)
}

func TestCountUnanswerable(t *testing.T) {
	assert.Equal(t, 2, CountUnanswerable([]Example{{ID: "u"}, {ID: "a", Answers: Answers{Text: []string{"x"}, AnswerStart: []int{0}}}, {ID: "v"}}))
	assert.Zero(t, CountUnanswerable(nil))
}
