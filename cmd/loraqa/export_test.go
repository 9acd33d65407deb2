package main

import (
	"context"
	"os"
	"path/filepath"
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

// TestExportMerged: `loraqa export` folds the committed tiny BERT fixture's
// adapter into its base; the exported directory, loaded as a plain QA model,
// gives the logits of base + adapter (to 1e-5), and an existing --out is
// refused and left as it was.
func TestExportMerged(t *testing.T) {
	fx := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa")
	base, adapter := filepath.Join(fx, "base"), filepath.Join(fx, "adapter")
	out := filepath.Join(t.TempDir(), "merged")
	require.NoError(t, runExport(context.Background(), []string{"--adapter", adapter, "--model", base, "--out", out}))
	for _, f := range []string{"config.json", "model.safetensors"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	left, err := filepath.Glob(filepath.Join(filepath.Dir(out), ".merged.*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary directory is left")

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
	shape := []int64{int64(len(b.InputIDs)), int64(len(b.InputIDs[0]))}
	logits := func(m *bert.Model) ([]float32, []float32) {
		in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
		if types != nil {
			in.TokenTypeIDs = torch.FromInt64(types, shape, gotch.CPU)
		}
		defer in.Drop()
		var o bert.Output
		torch.NoGrad(func() { o = m.Forward(in, false) })
		defer o.Drop()
		return torch.ToFloat32(o.StartLogits), torch.ToFloat32(o.EndLogits)
	}

	m, err := bert.Load(base, bert.LoadOptions{})
	require.NoError(t, err)
	defer m.Drop()
	a, err := peft.Load(adapter, m)
	require.NoError(t, err)
	defer a.Drop()
	ws, we := logits(m)

	merged, err := bert.Load(out, bert.LoadOptions{})
	require.NoError(t, err)
	defer merged.Drop()
	gs, ge := logits(merged)
	require.Len(t, gs, len(ws))
	var d float64
	for i := range ws {
		d = max(d, abs32(gs[i]-ws[i]), abs32(ge[i]-we[i]))
	}
	t.Logf("merged export vs base + adapter: max |Δ| %.2e", d)
	assert.Less(t, d, 1e-5)
	plain, err := bert.Load(base, bert.LoadOptions{}) // without the adapter the logits differ: the check is not vacuous
	require.NoError(t, err)
	defer plain.Drop()
	ps, _ := logits(plain)
	var dp float64
	for i := range ws {
		dp = max(dp, abs32(ps[i]-ws[i]))
	}
	assert.Greater(t, dp, 1e-2)

	before, err := os.ReadFile(filepath.Join(out, "config.json"))
	require.NoError(t, err)
	err = runExport(context.Background(), []string{"--adapter", adapter, "--model", base, "--out", out})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists")
	after, err := os.ReadFile(filepath.Join(out, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	err = runExport(context.Background(), []string{"--adapter", filepath.Join(fx, "nope"), "--model", base, "--out", filepath.Join(t.TempDir(), "x")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope")
}

func abs32(v float32) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}
