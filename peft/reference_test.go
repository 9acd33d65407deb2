package peft_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/counterdropout"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/verify"
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

// savedRandomAdapter loads base, injects PEFT's default adapter for the
// model family (4 layers on the tiny fixtures) with lora_B drawn from
// N(0, 0.05) after seed, saves it (base_model_name_or_path baseModel) and
// returns the model, the adapter injected and the directory. Both are freed
// when the test ends.
func savedRandomAdapter(t *testing.T, base, family, baseModel string, seed int64) (*bert.Model, *peft.Adapter, string) {
	t.Helper()
	m, err := bert.Load(base, bert.LoadOptions{})
	require.NoError(t, err)
	t.Cleanup(m.Drop)
	cfg := peft.DefaultConfig()
	cfg.TargetModules = peft.DefaultTargets(family)
	cfg.BaseModel = baseModel
	torch.ManualSeed(seed)
	a, err := peft.Inject(m, cfg)
	require.NoError(t, err)
	t.Cleanup(a.Drop)
	require.Len(t, a.Layers, 4)
	torch.NoGrad(func() {
		for _, l := range a.Layers {
			l.B.MustNormal_(0, 0.05)
		}
	})
	dir := t.TempDir()
	require.NoError(t, a.Save(dir))
	return m, a, dir
}

// TestPEFTLoadsOurBERTAdapter: the other architecture. A loraqa adapter on the
// BERT fixture's base (PEFT's default targets query/value) loads in PEFT with the
// same logits. PEFT 0.6's PeftModelForQuestionAnswering drops token_type_ids, so
// both sides run with all token types 0.
func TestPEFTLoadsOurBERTAdapter(t *testing.T) {
	base := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa", "base")
	m, _, dir := savedRandomAdapter(t, base, "bert", "", 5)
	ids := [][]int64{{2, 17, 99, 3, 400, 401, 402, 3}, {2, 18, 3, 500, 501, 3, 0, 0}}
	mask := [][]int64{{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0}}
	s, e := logits(t, m, batchOf(ids, mask))
	d, arch := testutil.PEFTCheck(t, map[string]any{"base": base, "adapter": dir, "input_ids": ids, "attention_mask": mask,
		"start_logits": rows(s, 8), "end_logits": rows(e, 8)})
	t.Logf("PEFT vs loraqa (BERT): max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)
	assert.Equal(t, "BertForQuestionAnswering", arch)
}

// TestPEFTLoadsOurRoBERTaAdapter: PEFT files the other way for RoBERTa. A
// loraqa adapter on the RoBERTa fixture's base (PEFT's default targets for
// roberta, query/value, under PEFT's names
// base_model.model.roberta.encoder.layer.N.attention.self.query.lora_A.weight)
// loads in PEFT without a warning and gives loraqa's logits on the fixture's
// padded batch (<pad> = 1, positions from 2); its merged export loads in
// transformers as RobertaForQuestionAnswering with the same logits.
func TestPEFTLoadsOurRoBERTaAdapter(t *testing.T) {
	fx := testutil.Fixture(t, "tiny-roberta-qa")
	base := filepath.Join(fx, "base")
	assert.Equal(t, []string{"query", "value"}, peft.DefaultTargets("roberta"))
	m, a, dir := savedRandomAdapter(t, base, "roberta", base, 7)
	w, err := bert.ReadSafetensors(filepath.Join(dir, "adapter_model.safetensors"))
	require.NoError(t, err)
	assert.Contains(t, w, "base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight")
	assert.Contains(t, w, "base_model.model.roberta.encoder.layer.1.attention.self.value.lora_B.weight")
	assert.Contains(t, w, "base_model.model.qa_outputs.weight")

	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	b := exp.Batches[0]
	n := len(b.InputIDs[0])
	s, e := logits(t, m, batchOf(b.InputIDs, b.AttentionMask))
	req := map[string]any{"base": base, "adapter": dir, "input_ids": b.InputIDs, "attention_mask": b.AttentionMask,
		"start_logits": rows(s, n), "end_logits": rows(e, n)}
	d, arch := testutil.PEFTCheck(t, req)
	t.Logf("PEFT vs loraqa (RoBERTa): max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)
	assert.Equal(t, "RobertaForQuestionAnswering", arch)

	merged := t.TempDir()
	require.NoError(t, a.ExportMerged(merged, base))
	req["merged"] = merged
	d, arch = testutil.PEFTCheck(t, req)
	t.Logf("merged RoBERTa export in transformers: max |Δ| %.2e (%s)", d, arch)
	assert.Less(t, d, 1e-4)
	assert.Equal(t, "RobertaForQuestionAnswering", arch)
	mc, err := bert.LoadConfig(merged)
	require.NoError(t, err)
	assert.Equal(t, "roberta", mc.ModelType)
	assert.Equal(t, int64(1), mc.PadTokenID)
}

// TestTrainModeForwardMatchesPEFT: with dropout on (the model's own and a LoRA
// dropout of 0.05), loraqa and HF + PEFT draw the same dropout masks, so the
// train-mode logits agree. Both sides use the counter-based dropout
// (internal/counterdropout; peft_check.py patches torch.nn.functional.dropout
// with it, transformers' attention in its eager form), whose k-th call's mask
// depends on the seed and k only: the logits agree only if dropout sits at the
// same places, is called in the same order on tensors of the same shapes and
// scales alike as in transformers' BERT, DistilBERT and RoBERTa and PEFT's LoRA layer
// — and both sides count the same calls. Another seed on loraqa's side gives
// other logits.
func TestTrainModeForwardMatchesPEFT(t *testing.T) {
	sameCounterMasks(t)
	for _, fx := range []string{testutil.Committed(t, "tiny-bert-qa"), testutil.Fixture(t, "tiny-distilbert-qa"), testutil.Fixture(t, "tiny-roberta-qa")} {
		t.Run(filepath.Base(fx), func(t *testing.T) {
			m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{})
			require.NoError(t, err)
			defer m.Drop()
			require.Positive(t, m.Config.Dropout)
			require.Positive(t, m.Config.AttentionDropout)
			a, err := peft.Load(filepath.Join(fx, "adapter"), m)
			require.NoError(t, err)
			defer a.Drop()
			for _, l := range a.Layers {
				l.Dropout = 0.05
			}
			exp, err := verify.ReadExpected(fx)
			require.NoError(t, err)
			b := exp.Batches[0]
			var ids, mask, types []int64
			for i := range b.InputIDs {
				ids, mask = append(ids, b.InputIDs[i]...), append(mask, b.AttentionMask[i]...)
				if b.TokenTypeIDs != nil {
					types = append(types, b.TokenTypeIDs[i]...)
				}
			}
			n := len(b.InputIDs[0])
			shape := []int64{int64(len(b.InputIDs)), int64(n)}
			in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
			if types != nil && m.Config.BertLayout() {
				in.TokenTypeIDs = torch.FromInt64(types, shape, gotch.CPU)
			}
			defer in.Drop()
			forward := func(seed uint64) (s, e []float32, calls int) {
				d := &counterdropout.CounterDropout{Seed: seed}
				defer torch.SetDropout(d.Func())()
				torch.NoGrad(func() {
					o := m.Forward(in, true)
					s, e = torch.ToFloat32(o.StartLogits), torch.ToFloat32(o.EndLogits)
					o.Drop()
				})
				return s, e, d.Calls()
			}
			s, e, calls := forward(7)
			// embeddings; per layer the LoRA inputs, the attention probabilities, the
			// FFN output (BERT: and the attention output); DistilBERT: the QA head's input
			perLayer, head := len(a.Layers)/len(m.Blocks)+2, 1
			if m.Config.BertLayout() { // BERT, RoBERTa
				perLayer, head = perLayer+1, 0
			}
			require.Equal(t, 1+len(m.Blocks)*perLayer+head, calls, "loraqa's dropout calls")
			req := map[string]any{"base": filepath.Join(fx, "base"), "adapter": filepath.Join(fx, "adapter"),
				"input_ids": b.InputIDs, "attention_mask": b.AttentionMask, "dropout_seed": 7, "lora_dropout": 0.05,
				"start_logits": rows(s, n), "end_logits": rows(e, n)}
			if in.TokenTypeIDs != nil {
				req["token_type_ids"] = b.TokenTypeIDs
			}
			res := testutil.PEFTRun(t, req)
			t.Logf("train-mode logits, PEFT vs loraqa, %d dropout calls: max |Δ| %.2e", calls, res.MaxAbsDiff)
			assert.Equal(t, calls, res.DropoutCalls, "HF + PEFT call dropout as often as loraqa")
			assert.Less(t, res.MaxAbsDiff, 1e-4)

			// loraqa seeded otherwise draws other masks: the check above can fail.
			s, _, _ = forward(8)
			req["start_logits"] = rows(s, n)
			d, _ := testutil.PEFTCheck(t, req)
			assert.Greater(t, d, 1e-3, "another seed draws other masks")
		})
	}
}

// sameCounterMasks: loraqa's counterdropout.CounterMask and peft_check.py's
// counter_mask drop the same elements (three calls, seed 7, p 0.1).
func sameCounterMasks(t *testing.T) {
	t.Helper()
	var ref struct {
		Zeros [][]int `json:"zeros"`
	}
	testutil.RunRef(t, "peft_check.py", map[string]any{"dropout_probe": map[string]any{"seed": 7, "calls": 3, "n": 1000, "p": 0.1}}, &ref)
	require.Len(t, ref.Zeros, 3)
	for k, want := range ref.Zeros {
		got := []int{}
		for i, v := range counterdropout.CounterMask(7, uint64(k), 1000, 0.1) {
			if v == 0 {
				got = append(got, i)
			}
		}
		require.Equal(t, want, got, "call %d: the dropped elements", k)
		require.InDelta(t, 100, len(got), 40, "call %d drops about 10%%", k)
	}
}
