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
	l := newLowPrecision(t, torch.Int8Available, "int8 is not available in this LibTorch", verify.Int8Tolerance)

	m, err := bert.Load(filepath.Join(l.fx, "base"), bert.LoadOptions{Device: gotch.CPU, DType: gotch.Int8})
	require.NoError(t, err)
	require.True(t, m.Int8())
	a := l.adapterOver(m, "LoRA over int8", "the base linear is int8; merge into the float32 base, then quantize it", "the base is int8")
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
	m, err = bert.Load(filepath.Join(l.fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	l.mergedThenConverted(m, (*bert.Model).Quantize, "merged, then int8", "the merged weight was quantized to int8")

	// A DoRA adapter injected before Quantize: its forward is an error, not a crash.
	m, err = bert.Load(filepath.Join(l.fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	cfg := peft.DefaultConfig()
	cfg.UseDoRA = true
	a, err = peft.Inject(m, cfg)
	require.NoError(t, err)
	require.NoError(t, m.Quantize())
	err = torch.Guard(func() { logits(t, m, l.exp.Batches[0]) }) // Guard frees the failed forward's tensors
	assert.ErrorContains(t, err, "DoRA layer needs its base weight in float32")
	a.Drop()
	m.Drop()
}

// lowPrecision is the tiny DistilBERT fixture as TestInt8Adapters and
// TestPackedAdapters use it: its directory, its expected logits, and the
// tolerance of the precision under test, for the checks both tests make.
type lowPrecision struct {
	t   *testing.T
	fx  string
	exp *verify.Expected
	tol float64
}

// newLowPrecision is the start TestInt8Adapters and TestPackedAdapters
// share. It skips t, saying missing, where available reports that this
// LibTorch lacks the kernels; else it reads the fixture, to check logits to
// tol. When t ends, it checks that no tensor or packed weight made since
// outlives the test.
func newLowPrecision(t *testing.T, available func() error, missing string, tol float64) lowPrecision {
	t.Helper()
	if err := available(); err != nil {
		t.Skipf("%s: %v", missing, err)
	}
	fx := testutil.Fixture(t, "tiny-distilbert-qa")
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	live := torch.LiveTensors()
	t.Cleanup(func() { assert.Equal(t, live, torch.LiveTensors(), "no tensor or packed weight outlives the test") })
	return lowPrecision{t: t, fx: fx, exp: exp, tol: tol}
}

// check checks m's logits on every batch of the fixture against the ones
// pick chooses, to l.tol.
func (l lowPrecision) check(m *bert.Model, pick func(verify.Batch) *verify.Logits, what string) {
	l.t.Helper()
	for _, b := range l.exp.Batches {
		s, e := logits(l.t, m, b)
		assert.Less(l.t, maxDiff(s, pick(b).Start), l.tol, "%s %s", what, b.Name)
		assert.Less(l.t, maxDiff(e, pick(b).End), l.tol, "%s %s", what, b.Name)
	}
}

// adapterOver loads the fixture's adapter over m, whose linears are int8 or
// packed already, checks the logits against the fixture's base-plus-adapter
// ones, and checks that what needs the base weights is refused: merging
// (mergeErr) and exporting the merge (exportErr). It returns the adapter.
func (l lowPrecision) adapterOver(m *bert.Model, what, mergeErr, exportErr string) *peft.Adapter {
	t := l.t
	t.Helper()
	a, err := peft.Load(filepath.Join(l.fx, "adapter"), m)
	require.NoError(t, err)
	l.check(m, func(b verify.Batch) *verify.Logits { return b.BasePlusAdapter }, what)
	assert.ErrorContains(t, a.Merge(), mergeErr)
	assert.ErrorContains(t, a.ExportMerged(t.TempDir(), ""), exportErr)
	return a
}

// mergedThenConverted loads the fixture's adapter over m (float32 or bf16),
// merges it, converts m in place (Quantize or Pack), checks the logits
// against the fixture's merged ones and that unmerging is refused
// (unmergeErr), then drops the adapter (which keeps the merge in the
// converted base, and does not fail) and m.
func (l lowPrecision) mergedThenConverted(m *bert.Model, convert func(*bert.Model) error, what, unmergeErr string) {
	t := l.t
	t.Helper()
	a, err := peft.Load(filepath.Join(l.fx, "adapter"), m)
	require.NoError(t, err)
	require.NoError(t, a.Merge())
	require.NoError(t, convert(m))
	l.check(m, func(b verify.Batch) *verify.Logits { return b.Merged }, what)
	assert.ErrorContains(t, a.Unmerge(), unmergeErr)
	a.Drop()
	m.Drop()
}
