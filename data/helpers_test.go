package data

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

func repoRoot(t testing.TB) string { return testutil.RepoRoot(t) }

// refPython is the reference environment's python (skipped when missing,
// unless CI=true or LORAQA_REQUIRE_REF=1).
func refPython(t testing.TB) string { return testutil.RefPython(t) }

// bertTokenizer loads the generated bert-base-uncased tokenizer directory
// (tokenizer.json and vocab.txt; make reference).
func bertTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := LoadTokenizer(testutil.Tokenizer(t))
	require.NoError(t, err)
	return tok
}

// fixtureBase is the generated tiny DistilBERT fixture's base model directory
// (vocab.txt and tokenizer_config.json, no tokenizer.json).
func fixtureBase(t testing.TB) string {
	t.Helper()
	return filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
}

// squadSample is testdata/squad-sample.json (scripts/gensample -format squad):
// 300 questions over 20 paragraphs in SQuAD v1.1 JSON.
func squadSample(t testing.TB) string { return testutil.Committed(t, "squad-sample.json") }

// sampleQA is examples/sample-qa.txt: 280 pairs in the qa-text format.
func sampleQA(t testing.TB) string { return testutil.SampleQA(t) }
