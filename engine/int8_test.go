package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

// TestEngineLowPrecisionSameSpans: an engine whose base is int8, or bf16
// with its linears packed (bert.Model.Pack), the adapter over the converted
// linears or merged and then converted, answers every sample query with the
// span fp32 gives (or, where fp32's best spans tie within tol, one of those)
// at a score within tol of fp32's: 0.01 for int8, 0.02 for bf16, where int8
// moves every score. An adapter loaded at run time runs over the converted
// base too; Close frees the packed weights with the rest. A precision whose
// kernels this LibTorch lacks is skipped.
func TestEngineLowPrecisionSameSpans(t *testing.T) {
	ctx := context.Background()
	want, err := tinyEngine(t, nil).AnswerBatch(ctx, topK(tinyQueries, 10))
	require.NoError(t, err)
	for _, p := range []struct {
		name      string // the precision, as likeFP32 logs it
		dtype     gotch.DType
		available func() error // nil where this LibTorch has the kernels
		missing   string       // why the subtest is skipped where it has not
		converted func(*bert.Model) bool
		modes     [2]string // the subtests: the adapter over the base, merged
		tol       float64
		moves     bool   // every score differs from fp32's
		freed     string // what Close frees
	}{
		{"int8", gotch.Int8, torch.Int8Available, "int8 is not available in this LibTorch", (*bert.Model).Int8,
			[2]string{"adapter over int8", "merged, then int8"}, 0.01, true, "the packed int8 weights"},
		{"bf16", gotch.BFloat16, torch.PackedLinearAvailable, "no prepacked linears in this LibTorch", (*bert.Model).Packed,
			[2]string{"adapter over the packed base", "merged, then packed"}, 0.02, false, "the packed weights"},
	} {
		t.Run(p.name, func(t *testing.T) {
			if err := p.available(); err != nil {
				t.Skipf("%s: %v", p.missing, err)
			}
			for i, merge := range []bool{false, true} {
				t.Run(p.modes[i], func(t *testing.T) {
					noGC(t)
					live := torch.LiveTensors()
					e := tinyEngine(t, func(o *Options) { o.DType, o.Merge = p.dtype, merge })
					require.True(t, p.converted(e.model))
					assert.Equal(t, merge, e.Merged())
					got, err := e.AnswerBatch(ctx, topK(tinyQueries, 3))
					require.NoError(t, err)
					likeFP32(t, want, got, p.tol, p.name)
					if p.moves {
						for q := range tinyQueries {
							assert.NotEqual(t, want[q].Answers[0].Score, got[q].Answers[0].Score, "query %d: the %s run moves the scores", q, p.name)
						}
					}
					if !merge {
						sameAtRunTime(t, e, got[0])
					}
					e.Close()
					assert.Equal(t, live, torch.LiveTensors(), "Close frees the tensors and "+p.freed)
				})
			}
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
