//go:build realdata

// The tests on the real datasets (make test-data; README "Tests on the real
// datasets"): $LORAQA_DATA holds tatqa-dev-qa.txt,
// tatqa-dev-textspan.squad.json, squad-v1.1-dev-part1.json and
// squad-v2.0-dev-part1.json. A missing LORAQA_DATA or file fails them.

package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

func realSQuAD(t *testing.T) []Example {
	t.Helper()
	r, err := ReadFile(testutil.RealData(t, "squad-v1.1-dev-part1.json"), FormatSQuAD)
	require.NoError(t, err)
	require.Len(t, r.Examples, 4961)
	return r.Examples
}

// TestRealDataTokenizerMatchesHF: tokenizerMatchesHF on every question and
// context of the SQuAD file, the TAT-QA texts, and the edge cases.
func TestRealDataTokenizerMatchesHF(t *testing.T) {
	tok := bertTokenizer(t)
	tatqa, err := ReadFile(testutil.RealData(t, "tatqa-dev-textspan.squad.json"), FormatSQuAD)
	require.NoError(t, err)
	tokenizerMatchesHF(t, tok, testutil.Tokenizer(t), append(qaTexts(realSQuAD(t), tatqa.Examples), tokenizerEdgeCases...))
}

// TestRealDataFeaturesMatchHFWindows: featuresMatchHFWindows for all SQuAD
// questions (and a quarter of them with small windows) and the joined TAT-QA
// context.
func TestRealDataFeaturesMatchHFWindows(t *testing.T) {
	tok := bertTokenizer(t)
	squad := realSQuAD(t)
	var sample []Example // every 4th question for the small windows, to keep the run short
	for i := 0; i < len(squad); i += 4 {
		sample = append(sample, squad[i])
	}
	featuresMatchHFWindows(t, tok, testutil.Tokenizer(t), []windowRun{
		{squad, DefaultFeatureOptions()},
		{sample, smallWindows},
		{joinedTest(t, testutil.RealData(t, "tatqa-dev-qa.txt")), DefaultFeatureOptions()},
	})
}

// TestRealDataFeaturizeSQuAD: featurizeSQuAD over all 4,961 SQuAD questions.
func TestRealDataFeaturizeSQuAD(t *testing.T) {
	featurizeSQuAD(t, bertTokenizer(t), realSQuAD(t))
}

// TestRealDataFeaturizeTATQATruncation: joinedTruncation on TAT-QA.
func TestRealDataFeaturizeTATQATruncation(t *testing.T) {
	joinedTruncation(t, bertTokenizer(t), testutil.RealData(t, "tatqa-dev-qa.txt"), 0.8)
}

// TestRealDataPrepareTATQA: checkPrepare on the 338 TAT-QA pairs.
func TestRealDataPrepareTATQA(t *testing.T) {
	checkPrepare(t, testutil.RealData(t, "tatqa-dev-qa.txt"), 338, 304, 34)
}

// TestRealDataReadFiles reads the three real files.
func TestRealDataReadFiles(t *testing.T) {
	readQATextFile(t, testutil.RealData(t, "tatqa-dev-qa.txt"), 338, qa{"What is the company paid on a cost-plus type contract?",
		"our allowable incurred costs plus a profit which can be fixed or variable depending on the contract’s fee arrangement up to predetermined funding levels determined by the customer"})
	readSQuADFile(t, testutil.RealData(t, "tatqa-dev-textspan.squad.json"), 338)

	r, err := ReadFile(testutil.RealData(t, "squad-v1.1-dev-part1.json"), FormatAuto)
	require.NoError(t, err)
	assert.Len(t, r.Examples, 4961)
	answers := 0
	for _, ex := range r.Examples {
		require.NoError(t, ex.CheckAnswers())
		answers += len(ex.Answers.Text)
	}
	assert.Equal(t, 17778, answers)
}

// realSQuAD2 reads squad-v2.0-dev-part1.json: 2,805 questions, every one kept.
func realSQuAD2(t *testing.T) (string, []Example) {
	t.Helper()
	path := testutil.RealData(t, "squad-v2.0-dev-part1.json")
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	require.Len(t, r.Examples, 2805)
	return path, r.Examples
}

// TestRealDataReadSQuAD2: the SQuAD 2.0 file's 2,805 questions are all kept,
// 1,527 of them unanswerable (is_impossible) and 1,278 with 4,190 answers,
// each at its answer_start; auto turns version_2_with_negative on.
func TestRealDataReadSQuAD2(t *testing.T) {
	path, exs := realSQuAD2(t)
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatSQuAD, r.Format)
	assert.Equal(t, 2805, r.Records)
	assert.Empty(t, r.Skipped)
	assert.Empty(t, r.DroppedAnswers)
	assert.Equal(t, 1527, CountUnanswerable(exs))
	answers := 0
	for _, ex := range exs {
		require.NoError(t, ex.CheckAnswers())
		answers += len(ex.Answers.Text)
	}
	assert.Equal(t, 4190, answers)
	assert.Equal(t, 294, CountContexts(exs))
	on, note, err := ResolveVersion2(Version2Auto, exs)
	require.NoError(t, err)
	assert.True(t, on)
	assert.Contains(t, note, "1527 of 2805 questions have no answer")
}

// TestRealDataSQuAD2MatchesHF: squad2MatchesHF on the SQuAD 2.0 file's
// windows (bert-base-uncased, 384/128: 3,000 windows, every answer in one,
// 1,527 questions labelled at [CLS] only) with random logits.
func TestRealDataSQuAD2MatchesHF(t *testing.T) {
	path, exs := realSQuAD2(t)
	feats, rep, err := Featurize(bertTokenizer(t), exs, DefaultFeatureOptions())
	require.NoError(t, err)
	assert.Equal(t, 3000, rep.Windows)
	assert.Equal(t, 1527, rep.NoAnswer)
	assert.Equal(t, 1278, rep.AnswersInWindow)
	assert.Zero(t, rep.AnswersLost)
	for _, f := range feats {
		if !f.HasAnswer() {
			require.Equal(t, [2]int{0, 0}, [2]int{f.StartPosition, f.EndPosition})
		}
	}
	starts, ends := randomLogits(feats, unanswerableIDs(exs), 3, 4)
	squad2MatchesHF(t, exs, feats, starts, ends, path, squad2Runs)
}
