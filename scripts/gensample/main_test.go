package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommittedSamples: examples/sample-qa.txt, examples/sample-filings.json
// and testdata/squad-sample.json are what gensample writes (regenerate them
// with the commands in the package comment after changing it).
func TestCommittedSamples(t *testing.T) {
	for format, file := range map[string]string{"qa-text": "examples/sample-qa.txt", "filings": "examples/sample-filings.json", "squad": "testdata/squad-sample.json"} {
		want, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(file)))
		require.NoError(t, err)
		got, err := generate(format)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%s is stale: go run ./scripts/gensample -format %s > %s", file, format, file)
	}
	_, err := generate("csv")
	assert.ErrorContains(t, err, `-format "csv"`)
}

// TestFilingsAnswersAreSpans: every answer sits at its answer_start, every
// question of the qa-text sample is asked once, with the same answer up to the
// capital letter a sentence may start with, and passages are 3–6 sentences.
func TestFilingsAnswersAreSpans(t *testing.T) {
	b, err := generate("filings")
	require.NoError(t, err)
	var doc struct {
		Data []article `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	qaText, err := generate("qa-text")
	require.NoError(t, err)
	want := map[string]string{}
	for _, block := range strings.Split(strings.TrimSpace(string(qaText)), "\n\n") {
		lines := strings.Split(block, "\n")
		want[strings.TrimPrefix(lines[0], "Q: ")] = strings.TrimPrefix(lines[1], "A: ")
	}
	seen := 0
	for _, a := range doc.Data {
		for _, p := range a.Paragraphs {
			n := strings.Count(p.Context, ". ") + 1
			assert.True(t, n >= 3 && n <= 6, "%s: %d sentences in %q", a.Title, n, p.Context)
			for _, q := range p.QAs {
				require.Len(t, q.Answers, 1)
				ans := q.Answers[0]
				assert.Equal(t, ans.Text, p.Context[ans.Start:ans.Start+len(ans.Text)], q.ID)
				assert.True(t, strings.EqualFold(want[q.Question], ans.Text), "%s: %q vs %q", q.ID, ans.Text, want[q.Question])
				seen++
			}
		}
	}
	assert.Equal(t, len(want), seen)
	assert.Equal(t, 280, seen)
}
