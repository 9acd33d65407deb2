package train_test

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/qa"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

// tinyModel is a randomly initialised tiny DistilBERT (vocab 30522, dim 32)
// with a fresh LoRA adapter on q_lin/v_lin, its base in dtype.
func tinyModel(t *testing.T, dtype gotch.DType) (*bert.Model, *peft.Adapter) {
	t.Helper()
	torch.ManualSeed(3)
	m, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, dtype)
	require.NoError(t, err)
	m.Init()
	a, err := peft.Inject(m, peft.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { a.Drop(); m.Drop() })
	return m, a
}

// syntheticFeatures are n windows of length L with random ids below vocab and
// the answer always at tokens 5..7: a task a few steps of LoRA can learn.
func syntheticFeatures(n, L int, vocab int64, seed int64) []data.Feature {
	r := rand.New(rand.NewSource(seed))
	out := make([]data.Feature, n)
	for i := range out {
		ids, mask := make([]int64, L), make([]int64, L)
		for j := range ids {
			ids[j], mask[j] = 1000+r.Int63n(vocab-1000), 1
		}
		ids[0] = 101
		out[i] = data.Feature{ExampleIndex: i, InputIDs: ids, AttentionMask: mask, StartPosition: 5, EndPosition: 7}
	}
	return out
}

// TestBF16BaseHalvesBytesTrainablesStayFP32: a bf16 base holds half the
// bytes of a float32 one (the LayerNorms and the QA head, 0.03% of the
// weights, stay float32); LoRA weights, the QA head copy and their gradients
// are float32.
func TestBF16BaseHalvesBytesTrainablesStayFP32(t *testing.T) {
	bytes := func(dtype gotch.DType) float64 {
		m, err := bert.New(bert.DefaultDistilBERTConfig(), gotch.CPU, dtype)
		require.NoError(t, err)
		defer m.Drop()
		var n float64
		for _, p := range m.Params() {
			n += float64(p.Tensor.Numel()) * float64(p.Tensor.DType().Size())
		}
		return n
	}
	f32, b16 := bytes(gotch.Float), bytes(gotch.BFloat16)
	t.Logf("distilbert-base parameters: fp32 %.1f MB, bf16 %.1f MB (ratio %.5f)", f32/1e6, b16/1e6, b16/f32)
	assert.InDelta(t, 0.5, b16/f32, 0.001)

	m, a := tinyModel(t, gotch.BFloat16)
	assert.Equal(t, gotch.BFloat16, m.Param("distilbert.transformer.layer.0.attention.q_lin.weight").DType())
	o := train.DefaultOptions()
	o.Epochs, o.LR = 1, 1e-3
	feats := syntheticFeatures(8, 32, m.Config.VocabSize, 1)
	tr := &train.Trainer{Model: m, Adapter: a, Train: feats, Opt: o}
	defer tr.Close()
	b := batchOf(t, feats)
	_, err := tr.Step(b)
	require.NoError(t, err)
	require.NotEmpty(t, a.Params())
	for _, p := range a.Params() {
		assert.Equal(t, gotch.Float, p.Tensor.DType(), "trainable %s", p.Key)
	}
	// Step zeroes the gradients; one more backward shows their dtype.
	in := bert.Batch{InputIDs: torch.FromInt64(b.InputIDs, b.Shape(), gotch.CPU), AttentionMask: torch.FromInt64(b.AttentionMask, b.Shape(), gotch.CPU),
		StartPositions: torch.FromInt64(b.StartPositions, []int64{int64(b.Rows)}, gotch.CPU), EndPositions: torch.FromInt64(b.EndPositions, []int64{int64(b.Rows)}, gotch.CPU)}
	defer in.Drop()
	out := m.Forward(in, true)
	assert.Equal(t, gotch.Float, out.StartLogits.DType(), "logits are float32")
	out.Loss.MustBackward()
	out.Drop()
	for _, p := range a.Params() {
		g := p.Tensor.MustGrad(false)
		assert.Equal(t, gotch.Float, g.DType(), "gradient of %s", p.Key)
		g.MustDrop()
	}
	train.ZeroGrad(a.Params())
}

func batchOf(t *testing.T, feats []data.Feature) *data.Batch {
	t.Helper()
	bt, err := data.NewBatcher(feats, data.BatchOptions{BatchSize: len(feats)})
	require.NoError(t, err)
	return bt.Make(bt.Plan(0)[0])
}

// TestBF16LossFalls: 30 AdamW steps on a bf16 base at lr 1e-2 bring the loss
// on the training batch below half its start, as they do on a float32 base.
func TestBF16LossFalls(t *testing.T) {
	for _, dtype := range []gotch.DType{gotch.Float, gotch.BFloat16} {
		m, a := tinyModel(t, dtype)
		o := train.DefaultOptions()
		o.Epochs, o.LR, o.Scheduler = 1, 1e-2, "constant"
		feats := syntheticFeatures(16, 32, m.Config.VocabSize, 2)
		tr := &train.Trainer{Model: m, Adapter: a, Train: feats, Opt: o}
		b := batchOf(t, feats)
		var first, last float64
		live := 0
		for i := 0; i < 30; i++ {
			_, err := tr.Step(b)
			require.NoError(t, err)
			loss, _ := tr.LastLoss()
			if i == 0 {
				first, live = loss, torch.LiveTensors()
			}
			last = loss
		}
		tr.Close()
		t.Logf("%s: loss %.3f -> %.3f over 30 steps", torch.DTypeName(dtype), first, last)
		assert.Less(t, last, first/2, "%s: loss falls by more than half", torch.DTypeName(dtype))
		assert.LessOrEqual(t, torch.LiveTensors(), live, "%s: no tensor leaks across steps", torch.DTypeName(dtype))
	}
}

// firstEpoch trains one epoch of an epochs-long run into dir, stops as if
// interrupted, and returns the options and the one checkpoint written.
func firstEpoch(t *testing.T, m *bert.Model, a *peft.Adapter, feats []data.Feature, dir string, epochs int) (train.Options, []string) {
	t.Helper()
	o := train.DefaultOptions()
	o.Epochs, o.OutputDir, o.LR = epochs, dir, 1e-3
	tr := &train.Trainer{Model: m, Adapter: a, Train: feats, Opt: o}
	train.StopAfterEpochs(tr, 1)
	_, err := tr.Run(context.Background())
	require.ErrorIs(t, err, train.ErrInterrupted)
	tr.Close()
	cks, err := train.Checkpoints(dir)
	require.NoError(t, err)
	require.Len(t, cks, 1)
	return o, cks
}

// TestLibTorchFailureKeepsCheckpoint: a run that LibTorch fails in (a token id
// past the vocabulary: "index out of range" inside the embedding) ends with an
// error that names the checkpoint kept, and that checkpoint still resumes.
func TestLibTorchFailureKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m, a := tinyModel(t, gotch.Float)
	good := syntheticFeatures(8, 16, m.Config.VocabSize, 3)
	o, cks := firstEpoch(t, m, a, good, dir, 2)

	bad := syntheticFeatures(8, 16, m.Config.VocabSize, 3)
	bad[3].InputIDs[4] = m.Config.VocabSize + 5
	tr := &train.Trainer{Model: m, Adapter: a, Train: bad, Opt: o}
	_, err := tr.Resume("latest")
	require.NoError(t, err)
	_, err = tr.Run(context.Background())
	tr.Close()
	require.Error(t, err)
	var le *torch.Error
	require.ErrorAs(t, err, &le, "the LibTorch failure is in the error chain")
	assert.Contains(t, err.Error(), "index out of range")
	assert.Contains(t, err.Error(), cks[0]+", is kept")
	assert.NotContains(t, err.Error(), "frame #")
	_, err = os.Stat(filepath.Join(cks[0], peft.WeightsFile))
	assert.NoError(t, err, "the checkpoint's adapter is still there")

	tr = &train.Trainer{Model: m, Adapter: a, Train: good, Opt: o}
	defer tr.Close()
	from, err := tr.Resume("latest")
	require.NoError(t, err)
	assert.Equal(t, cks[0], from)
	_, err = tr.Run(context.Background())
	assert.NoError(t, err, "the kept checkpoint resumes and finishes")
}

// TestLogitsReturnsLibTorchFailures: the forward pass that predict, eval and
// serve share returns a LibTorch failure as an error, frees the thread's grad
// mode, and the next call on the same model works.
func TestLogitsReturnsLibTorchFailures(t *testing.T) {
	m, _ := tinyModel(t, gotch.Float)
	good := syntheticFeatures(4, 16, m.Config.VocabSize, 4)
	bad := syntheticFeatures(4, 16, m.Config.VocabSize, 4)
	bad[2].InputIDs[3] = m.Config.VocabSize
	_, _, _, err := qa.Logits(context.Background(), m, bad, 2, false)
	require.Error(t, err)
	var le *torch.Error
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), "forward pass: libtorch: ")
	assert.Contains(t, le.Msg, "index out of range")
	starts, ends, _, err := qa.Logits(context.Background(), m, good, 2, false)
	require.NoError(t, err)
	assert.Len(t, starts, 4)
	assert.Len(t, ends[3], 16)
}

// TestNaNStopsAndKeepsTheGoodCheckpoint: a run that turns NaN after a
// checkpoint was written stops, names that checkpoint, and the checkpoint holds
// finite values that load (peft.Load rejects NaN/Inf).
func TestNaNStopsAndKeepsTheGoodCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m, a := tinyModel(t, gotch.Float)
	feats := syntheticFeatures(8, 16, m.Config.VocabSize, 5)
	o, cks := firstEpoch(t, m, a, feats, dir, 3)

	o.LR, o.MaxGradNorm = 1e30, 0
	tr := &train.Trainer{Model: m, Adapter: a, Train: feats, Opt: o}
	_, err := tr.Resume("latest")
	require.NoError(t, err)
	_, runErr := tr.Run(context.Background())
	tr.Close()
	require.Error(t, runErr)
	assert.Regexp(t, `(loss|gradient norm) is (NaN|\+Inf|-Inf)`, runErr.Error())
	after, err := train.Checkpoints(dir)
	require.NoError(t, err)
	require.NotEmpty(t, after)
	assert.Equal(t, cks[0], after[0], "the checkpoint from before the divergence is kept")
	assert.Contains(t, runErr.Error(), after[len(after)-1], "the error names the last good checkpoint")

	fresh, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer fresh.Drop()
	for _, c := range after {
		loaded, err := peft.Load(c, fresh)
		require.NoError(t, err, "checkpoint %s loads: its tensors are finite", c)
		loaded.Drop()
	}
}
