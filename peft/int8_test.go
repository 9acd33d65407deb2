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

// TestInt8Adapters: LoRA over an int8 base (loaded, injected, its layers'
// shapes from the packed weights) and an adapter merged and then quantized
// both give the fixture's adapter logits to int8's tolerance; what needs the
// float32 base weight is refused with an error: merging into the int8 base,
// unmerging a quantized merge, exporting, DoRA, trained biases. Nothing leaks.
func TestInt8Adapters(t *testing.T) {
	if err := torch.Int8Available(); err != nil {
		t.Skipf("int8 is not available in this LibTorch: %v", err)
	}
	fx := testutil.Fixture(t, "tiny-distilbert-qa")
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	live := torch.LiveTensors()
	check := func(m *bert.Model, pick func(verify.Batch) *verify.Logits, what string) {
		checkLogits(t, m, exp, pick, verify.Int8Tolerance, what)
	}

	m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU, DType: gotch.Int8})
	require.NoError(t, err)
	require.True(t, m.Int8())
	a, err := peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	check(m, func(b verify.Batch) *verify.Logits { return b.BasePlusAdapter }, "LoRA over int8")
	assert.ErrorContains(t, a.Merge(), "the base linear is int8; merge into the float32 base, then quantize it")
	assert.ErrorContains(t, a.ExportMerged(t.TempDir(), ""), "the base is int8")
	require.NoError(t, a.Detach())
	require.NoError(t, a.Attach())
	a.Drop()

	for _, c := range []struct {
		name string
		set  func(*peft.Config)
	}{
		{"use_dora", func(c *peft.Config) { c.UseDoRA = true }},
		{`bias "all"`, func(c *peft.Config) { c.Bias = "all" }},
	} {
		cfg := peft.DefaultConfig()
		c.set(&cfg)
		_, err := peft.Inject(m, cfg)
		assert.ErrorContains(t, err, c.name+" needs a float32 base, and this one is int8")
	}
	m.Drop()

	// Merged in float32, then quantized: the merged weight is int8.
	m, err = bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	a, err = peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	require.NoError(t, a.Merge())
	require.NoError(t, m.Quantize())
	check(m, func(b verify.Batch) *verify.Logits { return b.Merged }, "merged, then int8")
	assert.ErrorContains(t, a.Unmerge(), "the merged weight was quantized to int8")
	a.Drop() // keeps the merge in the int8 base, and does not fail
	m.Drop()

	// A DoRA adapter injected before Quantize: its forward is an error, not a crash.
	m, err = bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	cfg := peft.DefaultConfig()
	cfg.UseDoRA = true
	a, err = peft.Inject(m, cfg)
	require.NoError(t, err)
	require.NoError(t, m.Quantize())
	err = torch.Guard(func() { logits(t, m, exp.Batches[0]) }) // Guard frees the failed forward's tensors
	assert.ErrorContains(t, err, "DoRA layer needs its base weight in float32")
	a.Drop()
	m.Drop()
	assert.Equal(t, live, torch.LiveTensors(), "no tensor or packed weight outlives the test")
}

// checkLogits checks m's logits on every batch of exp against the ones pick
// chooses, to tol.
func checkLogits(t *testing.T, m *bert.Model, exp *verify.Expected, pick func(verify.Batch) *verify.Logits, tol float64, what string) {
	t.Helper()
	for _, b := range exp.Batches {
		s, e := logits(t, m, b)
		assert.Less(t, maxDiff(s, pick(b).Start), tol, "%s %s", what, b.Name)
		assert.Less(t, maxDiff(e, pick(b).End), tol, "%s %s", what, b.Name)
	}
}
