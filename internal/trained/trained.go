// Package trained fine-tunes small adapters for the tests that need a model
// that answers: the tiny DistilBERT fixture trained on testutil.SQuAD2Sample
// until it knows the sample (a couple of seconds on a CPU).
package trained

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/train"
)

// Revenue is a question the adapter of SQuAD2Adapter answers with
// RevenueAnswer from RevenuePassage (the sample's first paragraph), and
// Unanswerable one it abstains on there; Distractor is a passage that holds
// no answer to either.
const (
	Revenue        = "what was the revenue of acme?"
	RevenueAnswer  = "$10.0 million"
	Unanswerable   = "who is the ceo of acme?"
	RevenuePassage = "the company acme was founded in paris. the revenue of acme was $10.0 million in 2019. it sold a year of revenue."
	Distractor     = "bob lives in paris. the weather was cold in 2019."
)

// SQuAD2Adapter trains an adapter on the tiny DistilBERT fixture's base with
// SQuAD 2.0 data (testutil.SQuAD2Sample: 8 paragraphs, two answerable
// questions and one unanswerable each; 20 epochs at lr 1e-2, windows 64/32)
// and returns the base and the adapter directories. The adapter is saved
// with its SQuAD 2.0 threshold.
func SQuAD2Adapter(t testing.TB) (base, adapter string) {
	t.Helper()
	base = filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	rr, err := data.ReadFile(testutil.SQuAD2Sample(t, 8), data.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	examples := data.BuildDataset(rr, data.BuildOptions{})
	opts := train.DefaultOptions()
	opts.Epochs, opts.LR, opts.BatchSize = 20, 1e-2, 8
	opts.OutputDir = t.TempDir()
	fo := data.DefaultFeatureOptions()
	fo.MaxSeqLength, fo.DocStride = 64, 32
	adapter = filepath.Join(t.TempDir(), "adapter")
	if _, err := train.Run(context.Background(), train.Job{
		Base: base, Device: gotch.CPU, Train: examples, Test: examples, Features: fo,
		LoRA: peft.DefaultConfig(), Options: opts, Out: adapter,
	}); err != nil {
		t.Fatal(err)
	}
	return base, adapter
}
