package data

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeAnswer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"The Cat!", "cat"},
		{"an apple a day", "apple day"},
		{"theater and anthem", "theater and anthem"},
		{"A-team", "ateam"}, // punctuation goes before articles are matched
		{"Café, the best.", "café best"},
		{"  multiple   spaces\t\n", "multiple spaces"},
		{"l'été", "lété"},
		{"éa", "éa"},    // é is a word character: no boundary before a
		{"—a", "—"},     // — is not: a is an article
		{"the the", ""}, // both articles go
		{"$1.2 billion", "12 billion"},
		{"ΟΔΟΣ", "οδος"}, // final sigma, as Python lowers it
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, NormalizeAnswer(tc.in), "%q", tc.in)
	}
}

// TestExactMatchAndF1: exact match, F1 as evaluate-v1.1.py computes it and
// F1ScoreV2 as evaluate-v2.0.py does, which scores a pair that both
// normalize to no tokens 1 and one where only one side does 0.
func TestExactMatchAndF1(t *testing.T) {
	tests := []struct {
		pred, gold   string
		em, f1, f1v2 float64
	}{
		{"The cat", "cat", 1, 1, 1},
		{"the cat sat", "cat sat down", 0, 0.8, 0.8}, // P 2/2, R 2/3
		{"a b b", "b b c", 0, 0.8, 0.8},              // "a" is an article; Counter overlap 2
		{"b b b", "b c", 0, 0.4, 0.4},                // overlap min(3,1)=1: P 1/3, R 1/2
		{"dog", "cat", 0, 0, 0},
		{"", "", 1, 0, 1},                       // v1.1: empty F1 is 0; v2.0: no answer, rightly
		{"The.", "", 1, 0, 1},                   // normalizes to no tokens
		{"cat", "", 0, 0, 0},                    // an answer where there is none
		{"", "cat", 0, 0, 0},                    // no answer where there is one
		{"a", "cat", 0, 0, 0},                   // "a" normalizes to nothing
		{"cat sat", "cat", 0, 2.0 / 3, 2.0 / 3}, // P 1/2, R 1
		{"Cat.", "cat", 1, 1, 1},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.em, ExactMatch(tc.pred, tc.gold), "EM %q %q", tc.pred, tc.gold)
		assert.InDelta(t, tc.f1, F1Score(tc.pred, tc.gold), 1e-12, "F1 %q %q", tc.pred, tc.gold)
		assert.InDelta(t, tc.f1v2, F1ScoreV2(tc.pred, tc.gold), 1e-12, "F1 v2 %q %q", tc.pred, tc.gold)
	}
	assert.Equal(t, 1.0, SquadEM("Cat.", []string{"dog", "the cat"}))
	assert.InDelta(t, 2.0/3, SquadF1("cat", []string{"dog", "the cat sat"}), 1e-12)
	assert.Equal(t, 0.0, SquadF1("cat", nil))
}

func TestEvaluate(t *testing.T) {
	exs := []Example{
		{ID: "1", Answers: Answers{Text: []string{"Denver Broncos", "the Denver Broncos"}}},
		{ID: "2", Answers: Answers{Text: []string{"Santa Clara, California"}}},
		{ID: "3", Answers: Answers{Text: []string{"gold"}}},
	}
	preds := []Prediction{
		{ID: "1", Candidate: Candidate{Text: "The Denver Broncos."}},
		{ID: "2", Candidate: Candidate{Text: "Santa Clara"}}, // P 1, R 2/3 → 0.8
	}
	m := Evaluate(preds, exs)
	assert.Equal(t, 3, m.N)
	assert.Equal(t, 1, m.Missing)
	assert.InDelta(t, 100.0/3, m.ExactMatch, 1e-9)
	assert.InDelta(t, 100*(1+0.8)/3, m.F1, 1e-9)
	assert.Equal(t, Metrics{}, EvaluateTexts(nil, nil))
}

// TestNormalizeAnswerMatchesOfficial runs the official SQuAD v1.1
// normalize_answer and f1_score in Python on tricky strings.
func TestNormalizeAnswerMatchesOfficial(t *testing.T) {
	py := refPython(t)
	inputs := []string{
		"The Cat!", "an apple a day", "A-team", "Café, the best.", "éa", "—a", "ΟΔΟΣ Σ", "İstanbul",
		"x\u00a0the\u2009y", "\x1cthe\x1fa", "the_a a_the", "a1 the2 an", "²a a²", "the\u0301 cat", "Ⅻa", "“the” ‘an’",
	}
	const script = `
import json, re, string, sys
from collections import Counter
def normalize_answer(s):
    def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text): return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)
    def lower(text): return text.lower()
    return white_space_fix(remove_articles(remove_punc(lower(s))))
for line in sys.stdin:
    print(json.dumps(normalize_answer(json.loads(line))))
`
	var in bytes.Buffer
	for _, s := range inputs {
		b, _ := json.Marshal(s)
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = &in
	out, err := cmd.Output()
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	require.Len(t, lines, len(inputs))
	for i, s := range inputs {
		var want string
		require.NoError(t, json.Unmarshal(lines[i], &want))
		assert.Equal(t, want, NormalizeAnswer(s), "%q", s)
	}
}
