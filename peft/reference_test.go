package peft_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// TestPEFTLoadsOurAdapter: an adapter saved by loraqa (non-zero B, r 8, three
// targets) loads in PEFT's PeftModel.from_pretrained and reproduces loraqa's
// logits within 1e-4; its merged export loads in transformers as
// DistilBertForQuestionAnswering with the same logits.
func TestPEFTLoadsOurAdapter(t *testing.T) {
	m, fx := loadBase(t)
	defer m.Drop()
	cfg := peft.DefaultConfig()
	cfg.R, cfg.LoraAlpha, cfg.TargetModules = 8, 16, []string{"q_lin", "v_lin", "lin1"}
	cfg.BaseModel = filepath.Join(fx, "base")
	torch.ManualSeed(11)
	a, err := peft.Inject(m, cfg)
	require.NoError(t, err)
	defer a.Drop()
	torch.NoGrad(func() {
		for _, l := range a.Layers {
			l.B.MustNormal_(0, 0.05)
		}
	})
	dir := t.TempDir()
	require.NoError(t, a.Save(dir))

	ids := [][]int64{{101, 2054, 2001, 1996, 6599, 102, 1996, 6599, 2001, 1002, 1017, 2454, 1012, 102}, {101, 2040, 102, 2198, 2056, 2009, 102, 0, 0, 0, 0, 0, 0, 0}}
	mask := [][]int64{{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}}
	s, e := logits(t, m, batchOf(ids, mask))
	req := map[string]any{"base": filepath.Join(fx, "base"), "adapter": dir, "input_ids": ids, "attention_mask": mask,
		"start_logits": rows(s, 14), "end_logits": rows(e, 14)}
	d, arch := testutil.PEFTCheck(t, req)
	t.Logf("PEFT vs loraqa logits: max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)

	merged := t.TempDir()
	require.NoError(t, a.ExportMerged(merged, filepath.Join(fx, "base")))
	req["merged"] = merged
	d, arch = testutil.PEFTCheck(t, req)
	t.Logf("merged export in transformers: max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)
	assert.Equal(t, "DistilBertForQuestionAnswering", arch)
}

func rows(v []float32, n int) [][]float32 {
	var out [][]float32
	for i := 0; i+n <= len(v); i += n {
		out = append(out, v[i:i+n])
	}
	return out
}

// TestPEFTLoadsOurBERTAdapter: the other architecture. A loraqa adapter on the
// BERT fixture's base (PEFT's default targets query/value) loads in PEFT with the
// same logits. PEFT 0.6's PeftModelForQuestionAnswering drops token_type_ids, so
// both sides run with all token types 0.
func TestPEFTLoadsOurBERTAdapter(t *testing.T) {
	base := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa", "base")
	m, err := bert.Load(base, bert.LoadOptions{})
	require.NoError(t, err)
	defer m.Drop()
	cfg := peft.DefaultConfig()
	cfg.TargetModules = peft.DefaultTargets("bert")
	torch.ManualSeed(5)
	a, err := peft.Inject(m, cfg)
	require.NoError(t, err)
	defer a.Drop()
	require.Len(t, a.Layers, 4)
	torch.NoGrad(func() {
		for _, l := range a.Layers {
			l.B.MustNormal_(0, 0.05)
		}
	})
	dir := t.TempDir()
	require.NoError(t, a.Save(dir))
	ids := [][]int64{{2, 17, 99, 3, 400, 401, 402, 3}, {2, 18, 3, 500, 501, 3, 0, 0}}
	mask := [][]int64{{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0}}
	s, e := logits(t, m, batchOf(ids, mask))
	d, arch := testutil.PEFTCheck(t, map[string]any{"base": base, "adapter": dir, "input_ids": ids, "attention_mask": mask,
		"start_logits": rows(s, 8), "end_logits": rows(e, 8)})
	t.Logf("PEFT vs loraqa (BERT): max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)
	assert.Equal(t, "BertForQuestionAnswering", arch)
}
