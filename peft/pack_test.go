package peft_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/verify"
)

// TestPackedAdapters: LoRA over a packed bf16 base, and an adapter merged
// and then packed, give the fixture's adapter logits to bf16's tolerance;
// what needs the base weights is refused: merging into packed linears,
// unmerging a packed merge, exporting. Nothing leaks.
func TestPackedAdapters(t *testing.T) {
	l := newLowPrecision(t, torch.PackedLinearAvailable, "no prepacked linears in this LibTorch", verify.HalfTolerance[gotch.BFloat16])
	load := func() *bert.Model {
		m, err := bert.Load(filepath.Join(l.fx, "base"), bert.LoadOptions{Device: gotch.CPU, DType: gotch.BFloat16})
		require.NoError(t, err)
		return m
	}

	m := load()
	require.NoError(t, m.Pack())
	l.adapterOver(m, "LoRA over packed bf16", "packed for inference; merge before packing it", "int8 or packed for inference").Drop()
	m.Drop()

	l.mergedThenConverted(load(), (*bert.Model).Pack, "merged, then packed", "the merged weight was packed for inference")
}
