package peft_test

import (
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

// TestPackedAdapters: LoRA over a packed bf16 base, and an adapter merged
// and then packed, give the fixture's adapter logits to bf16's tolerance;
// what needs the base weights is refused: merging into packed linears,
// unmerging a packed merge, exporting. Nothing leaks.
func TestPackedAdapters(t *testing.T) {
	if err := torch.PackedLinearAvailable(); err != nil {
		t.Skipf("no prepacked linears in this LibTorch: %v", err)
	}
	fx := testutil.Fixture(t, "tiny-distilbert-qa")
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	live := torch.LiveTensors()
	check := func(m *bert.Model, pick func(verify.Batch) *verify.Logits, what string) {
		checkLogits(t, m, exp, pick, verify.HalfTolerance[gotch.BFloat16], what)
	}
	load := func() *bert.Model {
		m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU, DType: gotch.BFloat16})
		require.NoError(t, err)
		return m
	}

	m := load()
	require.NoError(t, m.Pack())
	a, err := peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	check(m, func(b verify.Batch) *verify.Logits { return b.BasePlusAdapter }, "LoRA over packed bf16")
	assert.ErrorContains(t, a.Merge(), "packed for inference; merge before packing it")
	assert.ErrorContains(t, a.ExportMerged(t.TempDir(), ""), "int8 or packed for inference")
	a.Drop()
	m.Drop()

	m = load()
	a, err = peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	require.NoError(t, a.Merge())
	require.NoError(t, m.Pack())
	check(m, func(b verify.Batch) *verify.Logits { return b.Merged }, "merged, then packed")
	assert.ErrorContains(t, a.Unmerge(), "the merged weight was packed for inference")
	a.Drop()
	m.Drop()
	assert.Equal(t, live, torch.LiveTensors(), "no tensor or packed weight outlives the test")
}
