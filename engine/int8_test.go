package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// TestEngineInt8SameSpans: an engine whose base is int8 (the adapter over the
// int8 linears, or merged and then quantized) answers every sample query
// with the span fp32 gives (or, where fp32's best spans tie within 0.01, one
// of those), at a score within 0.01 of fp32's; an adapter
// loaded at run time runs over the int8 base too; Close frees the packed
// weights with the rest.
func TestEngineInt8SameSpans(t *testing.T) {
	if err := torch.Int8Available(); err != nil {
		t.Skipf("int8 is not available in this LibTorch: %v", err)
	}
	ctx := context.Background()
	fp32 := tinyEngine(t, nil)
	batch := topK(tinyQueries, 3)
	want, err := fp32.AnswerBatch(ctx, topK(tinyQueries, 10))
	require.NoError(t, err)
	for _, merge := range []bool{false, true} {
		name := map[bool]string{false: "adapter over int8", true: "merged, then int8"}[merge]
		t.Run(name, func(t *testing.T) {
			noGC(t)
			live := torch.LiveTensors()
			e := tinyEngine(t, func(o *Options) { o.DType, o.Merge = gotch.Int8, merge })
			require.True(t, e.model.Int8())
			assert.Equal(t, merge, e.Merged())
			got, err := e.AnswerBatch(ctx, batch)
			require.NoError(t, err)
			likeFP32(t, want, got, 0.01, "int8")
			for i := range tinyQueries {
				assert.NotEqual(t, want[i].Answers[0].Score, got[i].Answers[0].Score, "query %d: the int8 run moves the scores", i)
			}
			if !merge {
				sameAtRunTime(t, e, got[0])
			}
			e.Close()
			assert.Equal(t, live, torch.LiveTensors(), "Close frees the tensors and the packed int8 weights")
		})
	}
}

func TestEngineInt8Refused(t *testing.T) {
	base, adapter := tinyDirs(t)
	o := DefaultOptions()
	o.Model, o.Device, o.DType = base, gotch.CudaBuilder(0), gotch.Int8
	o.Adapters = []NamedAdapter{{Name: "fix", Dir: adapter}}
	_, err := Load(context.Background(), o)
	assert.ErrorContains(t, err, "dtype int8 runs on the CPU only")
}

// likeFP32 checks that got (each query's best answer, in a run of lower
// precision, what) is the span fp32 gives in want (each query's top ten),
// at a score within tol of fp32's. The fixture's weights are random: its
// spans' probabilities are flat (0.05–0.11), and where fp32's best ones are
// closer than tol, the other run may pick another of them.
func likeFP32(t *testing.T, want, got []Result, tol float64, what string) {
	t.Helper()
	for i := range want {
		w, g := want[i].Answers, got[i].Answers[0]
		assert.InDelta(t, w[0].Score, g.Score, tol, "query %d", i)
		t.Logf("query %d: %s %q %.4f; fp32 %q %.4f, then %q %.4f", i, what, g.Answer, g.Score, w[0].Answer, w[0].Score, w[1].Answer, w[1].Score)
		ties := slices.IndexFunc(w, func(a Answer) bool { return w[0].Score-a.Score > tol })
		at := slices.IndexFunc(w, func(a Answer) bool { return a.Start == g.Start && a.End == g.End })
		if ties == 1 {
			assert.Equal(t, 0, at, "query %d: the same span", i)
		} else {
			assert.True(t, at >= 0 && (ties < 0 || at < ties), "query %d: %s's span is one of fp32's %d near ties (at %d)", i, what, ties, at)
		}
	}
}

// sameAtRunTime loads the fixture's adapter again at run time as "other"
// and checks that the first sample query answers through it as got does.
func sameAtRunTime(t *testing.T, e *Engine, got Result) {
	t.Helper()
	ctx := context.Background()
	_, other := tinyDirs(t)
	_, err := e.LoadAdapter(ctx, "other", other)
	require.NoError(t, err)
	q := tinyQueries[0]
	q.Adapter = "other"
	r, err := e.Answer(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, got.Answers[0], r.Answers[0], "the same adapter loaded at run time")
	require.NoError(t, e.UnloadAdapter(ctx, "other"))
}
