//go:build realdata

// RoBERTa's tokenizer on the real SQuAD 2.0 file (make test-data), with
// roberta-base's own vocab.json and merges.txt, which are not committed:
// LORAQA_ROBERTA_VOCAB=DIR names the directory that holds them (a relative
// path is taken from the repository root); unset, .build/roberta-base is
// used when it is there and the tests are skipped when it is not. A
// LORAQA_ROBERTA_VOCAB without the two files fails them.
//
// Getting the files without the Hugging Face hub: public GitHub repositories
// hold copies (vocab.json: 50,265 tokens, 898,823 bytes, sha256 9e7f63c2…;
// merges.txt: "#version: 0.2", "Ġ t", … 50,000 merges, 456,318 bytes, sha256
// 1ce16647…). The tests were run with this one's:
//
//	git clone https://github.com/NadiaSbaa/Mood-Miner && cd Mood-Miner
//	git checkout 4c1b92c105a36e4ebb85e6d85b8e6de7ece469d7
//	mkdir -p ../loraqa/.build/roberta-base
//	cp config/vocab-roberta-base.json ../loraqa/.build/roberta-base/vocab.json
//	cp config/merges-roberta-base.txt ../loraqa/.build/roberta-base/merges.txt
//
// frank-chris/solving-math-word-problems@a1272f2c holds the same merges.txt
// in pretrained_models/roberta-base, and the same vocab.json once its two
// added tokens <num> and <NUM> are taken out. With the hub:
// huggingface-cli download FacebookAI/roberta-base vocab.json merges.txt
// --local-dir .build/roberta-base.

package data

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// robertaBaseDir is the directory of roberta-base's vocab.json and merges.txt.
func robertaBaseDir(t *testing.T) string {
	t.Helper()
	dir, explicit := os.Getenv("LORAQA_ROBERTA_VOCAB"), true
	if dir == "" {
		dir, explicit = filepath.Join(repoRoot(t), ".build", "roberta-base"), false
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoRoot(t), dir)
	}
	for _, name := range []string{VocabJSONFile, MergesFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			if explicit {
				t.Fatalf("LORAQA_ROBERTA_VOCAB: %v", err)
			}
			t.Skipf("roberta-base's %s is not in %s: set LORAQA_ROBERTA_VOCAB or put it there (data/realdata_roberta_test.go says where to get it)", name, dir)
		}
	}
	return dir
}

// robertaBase loads roberta-base's tokenizer and checks it is the real one.
func robertaBase(t *testing.T) (*Tokenizer, string) {
	t.Helper()
	dir := robertaBaseDir(t)
	tok, err := LoadTokenizer(dir)
	require.NoError(t, err)
	require.Equal(t, ByteLevelBPE, tok.Kind())
	require.Equal(t, 50265, tok.VocabSize(), "roberta-base has 50,265 tokens")
	require.Equal(t, [4]int64{0, 2, 1, 3}, [4]int64{tok.CLS(), tok.SEP(), tok.PAD(), tok.UNK()})
	enc, err := tok.Encode("Hello world")
	require.NoError(t, err)
	require.Equal(t, []int64{31414, 232}, enc.IDs, "roberta-base's ids for \"Hello world\" (HF's docstring)")
	return tok, dir
}

// squad2Examples reads every question of the SQuAD 2.0 file, the
// unanswerable ones too (without answers), straight from its JSON.
func squad2Examples(t *testing.T) []Example {
	t.Helper()
	b, err := os.ReadFile(testutil.RealData(t, "squad-v2.0-dev-part1.json"))
	require.NoError(t, err)
	var doc struct {
		Data []struct {
			Title      string `json:"title"`
			Paragraphs []struct {
				Context string `json:"context"`
				QAs     []struct {
					ID           string `json:"id"`
					Question     string `json:"question"`
					IsImpossible bool   `json:"is_impossible"`
					Answers      []struct {
						Text        string `json:"text"`
						AnswerStart int    `json:"answer_start"`
					} `json:"answers"`
				} `json:"qas"`
			} `json:"paragraphs"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	var exs []Example
	for _, a := range doc.Data {
		for _, p := range a.Paragraphs {
			for _, qa := range p.QAs {
				ex := Example{ID: qa.ID, Title: a.Title, Context: p.Context, Question: qa.Question}
				if !qa.IsImpossible {
					for _, ans := range qa.Answers {
						ex.Answers.Text = append(ex.Answers.Text, ans.Text)
						ex.Answers.AnswerStart = append(ex.Answers.AnswerStart, ans.AnswerStart)
					}
				}
				exs = append(exs, ex)
			}
		}
	}
	require.Len(t, exs, 2805)
	return exs
}

// TestRealDataRobertaMatchesHF: ids and code-point offsets equal HF's
// RobertaTokenizerFast (roberta-base's vocabulary) on every question and
// context of the SQuAD 2.0 file, and on the edge cases.
func TestRealDataRobertaMatchesHF(t *testing.T) {
	tok, dir := robertaBase(t)
	exs := squad2Examples(t)
	texts := qaTexts(exs)
	tokens := 0
	for _, s := range texts {
		enc, err := tok.Encode(s)
		require.NoError(t, err)
		tokens += len(enc.IDs)
	}
	t.Logf("%d questions and %d contexts: %d texts, %d tokens", len(exs), len(texts)-len(exs), len(texts), tokens)
	tokenizerMatchesHF(t, tok, dir, append(append(texts, tokenizerEdgeCases...), robertaEdgeCases...))
}

// TestRealDataRobertaFeaturesMatchHFWindows: every window of every SQuAD 2.0
// question at 384/128 (and of every 4th at 64/16) equals HF's overflowing
// truncation with roberta-base's tokenizer; no answer is lost at 384/128.
func TestRealDataRobertaFeaturesMatchHFWindows(t *testing.T) {
	tok, dir := robertaBase(t)
	exs := squad2Examples(t)
	var sample []Example
	for i := 0; i < len(exs); i += 4 {
		sample = append(sample, exs[i])
	}
	featuresMatchHFWindows(t, tok, dir, []windowRun{
		{exs, DefaultFeatureOptions()},
		{sample, smallWindows},
	})
	_, rep, err := Featurize(tok, exs, DefaultFeatureOptions())
	require.NoError(t, err)
	t.Logf("384/128: %d windows for %d questions (%d unanswerable), %d answers in a window, %d lost",
		rep.Windows, rep.Examples, rep.NoAnswer, rep.AnswersInWindow, rep.AnswersLost)
	assert.Zero(t, rep.AnswersLost)
	assert.Equal(t, 1527, rep.NoAnswer)
}
