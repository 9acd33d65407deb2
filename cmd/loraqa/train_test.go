package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/verify"
)

// TestTrainCommandEndToEnd: `loraqa train` with the tiny fixture as
// base_qa_model on examples/sample-qa.txt (max_seq_length 128, doc_stride 32) for 2 epochs
// writes metrics.jsonl with an evaluation per epoch, the adapter and the
// tokenizer files; PEFT loads that adapter and reproduces loraqa's logits.
// (Answerless windows are thinned to 2% to keep the test short.)
func TestTrainCommandEndToEnd(t *testing.T) {
	base := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	qa := testutil.SampleQA(t)
	out := t.TempDir()
	t.Setenv("BASE_QA_MODEL", base)
	t.Setenv("FINE_TUNED_ADAPTER_PATH", filepath.Join(out, "adapter"))
	err := runTrain(context.Background(), []string{
		"--set", "data.input=" + qa, "--set", "data.max_seq_length=128", "--set", "data.doc_stride=32",
		"--set", "data.negative_fraction=0.02", "--set", "train.epochs=2", "--set", "train.learning_rate=1e-3",
		"--set", "output_dir=" + filepath.Join(out, "run"), "--set", "device=cpu",
	})
	require.NoError(t, err)

	f, err := os.Open(filepath.Join(out, "run", "metrics.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var evals []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		if rec["type"] == "eval" {
			evals = append(evals, rec)
		}
	}
	require.Len(t, evals, 2, "one evaluation per epoch")
	for i, e := range evals {
		assert.EqualValues(t, i+1, e["epoch"])
		for _, k := range []string{"eval_loss", "exact_match", "f1"} {
			assert.Contains(t, e, k)
		}
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "metrics.json"} {
		assert.FileExists(t, filepath.Join(out, "adapter", f))
	}
	assert.FileExists(t, filepath.Join(out, "run", "training_curve.png"))

	// PEFT loads the adapter and gives loraqa's logits.
	m, _ := loadTrained(t, base, out)
	exp, err := verify.ReadExpected(filepath.Dir(base))
	require.NoError(t, err)
	b := exp.Batches[0]
	var ids, mask []int64
	for i := range b.InputIDs {
		ids, mask = append(ids, b.InputIDs[i]...), append(mask, b.AttentionMask[i]...)
	}
	shape := []int64{int64(len(b.InputIDs)), int64(len(b.InputIDs[0]))}
	in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
	var o bert.Output
	torch.NoGrad(func() { o = m.Forward(in, false) })
	s, e := torch.ToFloat32(o.StartLogits), torch.ToFloat32(o.EndLogits)
	o.Drop()
	in.InputIDs.MustDrop()
	in.AttentionMask.MustDrop()
	split := func(v []float32) [][]float32 {
		var r [][]float32
		for i := int64(0); i < shape[0]; i++ {
			r = append(r, v[i*shape[1]:(i+1)*shape[1]])
		}
		return r
	}
	d, _ := testutil.PEFTCheck(t, map[string]any{"base": base, "adapter": filepath.Join(out, "adapter"),
		"input_ids": b.InputIDs, "attention_mask": b.AttentionMask, "start_logits": split(s), "end_logits": split(e)})
	t.Logf("PEFT vs loraqa on the trained adapter: max |Δ| %.2e", d)
	assert.Less(t, d, 1e-4)
}

// loadTrained loads the adapter a run saved in out/adapter over the float32
// base model in base on the CPU, as PEFT would, failing t where either does
// not load; both are dropped when t ends.
func loadTrained(t *testing.T, base, out string) (*bert.Model, *peft.Adapter) {
	t.Helper()
	m, err := bert.Load(base, bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	t.Cleanup(m.Drop)
	a, err := peft.Load(filepath.Join(out, "adapter"), m)
	require.NoError(t, err)
	t.Cleanup(a.Drop)
	return m, a
}

// TestTrainInitFrom: lora.init_from starts training from a PEFT-made adapter
// (its r 4 / alpha 8 config, its A, B and qa_outputs weights), as PEFT's
// PeftModel.from_pretrained(..., is_trainable=True) does. After one step at a
// learning rate of 1e-9 the saved adapter is the fixture's to 1e-6 — a fresh
// adapter's B is zero, the fixture's is not, so a run that ignored init_from
// fails — and a directory without an adapter is reported under its key.
func TestTrainInitFrom(t *testing.T) {
	fx := testutil.Fixture(t, "tiny-distilbert-qa")
	qa := testutil.SampleQA(t)
	out := t.TempDir()
	args := func(init string) []string {
		return []string{"--set", "base_qa_model=" + filepath.Join(fx, "base"), "--set", "lora.init_from=" + init,
			"--set", "fine_tuned_adapter_path=" + filepath.Join(out, "adapter"), "--set", "output_dir=" + filepath.Join(out, "run"),
			"--set", "data.input=" + qa, "--set", "data.max_seq_length=64", "--set", "data.doc_stride=16",
			"--set", "data.negative_fraction=0.01", "--set", "train.max_steps=1", "--set", "train.learning_rate=1e-9",
			"--set", "device=cpu"}
	}
	require.NoError(t, runTrain(context.Background(), args(filepath.Join(fx, "adapter"))))

	want, err := bert.ReadSafetensors(filepath.Join(fx, "adapter", peft.WeightsFile))
	require.NoError(t, err)
	got, err := bert.ReadSafetensors(filepath.Join(out, "adapter", peft.WeightsFile))
	require.NoError(t, err)
	require.Len(t, got, len(want))
	nonzeroB := false
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "saved adapter lacks %s", k)
		require.Equal(t, w.Shape, g.Shape, k)
		for i := range w.Data {
			require.InDelta(t, w.Data[i], g.Data[i], 1e-6, "%s[%d]", k, i)
			if strings.Contains(k, "lora_B") && w.Data[i] != 0 {
				nonzeroB = true
			}
		}
	}
	require.True(t, nonzeroB, "the fixture's lora_B must be non-zero for this test to tell init_from from a fresh adapter")
	d, err := peft.OpenDir(filepath.Join(out, "adapter"))
	require.NoError(t, err)
	assert.Equal(t, 4, d.Config.R)
	assert.EqualValues(t, 8, d.Config.LoraAlpha)

	err = runTrain(context.Background(), args(filepath.Join(fx, "base")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lora.init_from")
	assert.Contains(t, err.Error(), "adapter_config.json")
}
