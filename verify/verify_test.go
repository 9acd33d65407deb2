package verify_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/verify"
)

// TestFixture runs every check of the DistilBERT and RoBERTa fixtures: base,
// base + adapter (safetensors and .bin) and merged logits on three batches,
// and the three AdamW steps; nothing is skipped. The RoBERTa one (made by
// scripts/ref/make_fixtures.py roberta: HF RobertaForQuestionAnswering + PEFT
// LoRA on query/value, the byte-level BPE tokenizer) pads with <pad> = 1 and
// counts positions from pad_token_id + 1.
func TestFixture(t *testing.T) {
	for _, name := range []string{"tiny-distilbert-qa", "tiny-roberta-qa"} {
		t.Run(name, func(t *testing.T) {
			fx := testutil.Fixture(t, name)
			live := torch.LiveTensors()
			r, err := verify.Run(fx, gotch.CPU)
			require.NoError(t, err)
			assert.Empty(t, r.Skipped)
			require.GreaterOrEqual(t, len(r.Checks), 3*4+3+3+1+2+1)
			for _, c := range r.Checks {
				assert.True(t, c.Pass, "%s: max |Δ| %.3g > %.3g", c.Name, c.MaxDiff, c.Tolerance)
				t.Logf("%-60s %.2e (tol %.0e)", c.Name, c.MaxDiff, c.Tolerance)
			}
			assert.True(t, r.Pass)
			assert.Equal(t, live, torch.LiveTensors(), "verify frees every tensor it makes")
		})
	}
}

func TestNotAFixture(t *testing.T) {
	_, err := verify.Run(t.TempDir(), gotch.CPU)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "base/config.json")
}

// TestBERTFixture: the BERT fixture made by scripts/ref/make_fixtures.py (bert)
// (HF BertForQuestionAnswering + PEFT LoRA on query/value, token_type_ids).
func TestBERTFixture(t *testing.T) {
	fx := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa")
	r, err := verify.Run(fx, gotch.CPU)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(r.Checks), 3*3+3+3+1+2+1)
	for _, c := range r.Checks {
		assert.True(t, c.Pass, "%s: max |Δ| %.3g > %.3g", c.Name, c.MaxDiff, c.Tolerance)
	}
}

// TestBF16Fixtures: with the frozen base in bf16 every logit of the BERT,
// DistilBERT and RoBERTa fixtures (base, base + adapter, merged) stays within
// verify.HalfTolerance of the float32 golden logits, and the run really is in
// bf16 (the logits move by more than float32 noise).
func TestBF16Fixtures(t *testing.T) {
	for _, fx := range []string{testutil.Committed(t, "tiny-bert-qa"), testutil.Fixture(t, "tiny-distilbert-qa"), testutil.Fixture(t, "tiny-roberta-qa")} {
		live := torch.LiveTensors()
		r, err := verify.RunDType(fx, gotch.CPU, gotch.BFloat16)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(r.Checks), 9, fx)
		worst := 0.0
		for _, c := range r.Checks {
			assert.True(t, c.Pass, "%s %s: max |Δ| %.3g > %.3g", fx, c.Name, c.MaxDiff, c.Tolerance)
			assert.Equal(t, verify.HalfTolerance[gotch.BFloat16], c.Tolerance)
			if c.MaxDiff > worst {
				worst = c.MaxDiff
			}
		}
		t.Logf("%s: %d logit checks in bf16, worst max |Δ| %.3g (tolerance %.0e)", filepath.Base(fx), len(r.Checks), worst, verify.HalfTolerance[gotch.BFloat16])
		assert.Greater(t, worst, 1e-3, "a bf16 base changes the logits beyond float32 noise")
		assert.Equal(t, "bf16", r.DType)
		assert.Equal(t, live, torch.LiveTensors(), "verify frees every tensor it makes")
	}
}
