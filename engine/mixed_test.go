package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/internal/adaptertest"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/torch"
)

// switchCounter counts the adapter switches and forward records of the
// worker.
type switchCounter struct {
	nopObserver
	switches, forwards atomic.Int64
}

func (c *switchCounter) AdapterSwitch()           { c.switches.Add(1) }
func (c *switchCounter) Forward(string, int, int) { c.forwards.Add(1) }

// TestMixedAdapterBatch: with Fuse, one AnswerBatch over four adapters of
// one base runs as one mixed forward with no adapter switch, and every
// answer has the span its adapter gives alone, at the same score to float32
// rounding. The live tensors are the same after as before.
func TestMixedAdapterBatch(t *testing.T) {
	dir := testutil.Fixture(t, "tiny-distilbert-qa") // its adapter moves the answers (the tiny BERT one barely does)
	base, fix := filepath.Join(dir, "base"), filepath.Join(dir, "adapter")
	names := []string{"fix", "neg", "double", "half"}
	dirs := []string{fix, adaptertest.Scaled(t, fix, -4), adaptertest.Scaled(t, fix, 2), adaptertest.Scaled(t, fix, 0.5)}
	load := func(fuse bool, obs Observer) *Engine {
		o := DefaultOptions()
		o.Model, o.Device, o.Fuse, o.Observer = base, gotch.CPU, fuse, obs
		o.MaxBatch, o.BatchSize = 64, 64
		o.Features.MaxSeqLength, o.Features.DocStride = 128, 32
		for i, n := range names {
			o.Adapters = append(o.Adapters, NamedAdapter{Name: n, Dir: dirs[i]})
		}
		e, err := Load(context.Background(), o)
		require.NoError(t, err)
		t.Cleanup(e.Close)
		return e
	}
	ctx := context.Background()
	var qs []Query
	for i := range 12 {
		q := tinyQueries[i%len(tinyQueries)]
		q.Adapter, q.TopK = names[i/len(tinyQueries)], 2 // every adapter gets every query
		qs = append(qs, q)
	}
	// One adapter at a time: the reference.
	alone := load(false, nil)
	want := make([]Result, len(qs))
	for i, q := range qs {
		r, err := alone.Answer(ctx, q)
		require.NoError(t, err)
		want[i] = r
	}
	differ := map[string]bool{}
	for _, r := range want {
		differ[fmt.Sprint(r.Answers[0].Score)] = true
	}
	require.Greater(t, len(differ), 3, "the adapters answer alike: the test would prove nothing")

	obs := &switchCounter{}
	mixed := load(true, obs)
	_, err := mixed.AnswerBatch(ctx, qs) // warm up
	require.NoError(t, err)
	before := torch.LiveTensors()
	obs.switches.Store(0)
	obs.forwards.Store(0)
	got, err := mixed.AnswerBatch(ctx, qs)
	require.NoError(t, err)
	assert.Zero(t, obs.switches.Load(), "a mixed batch attaches no adapter")
	assert.EqualValues(t, len(names), obs.forwards.Load(), "one forward record per adapter of the mixed batch")
	for i := range qs {
		require.Len(t, got[i].Answers, len(want[i].Answers), "query %d", i)
		assert.Equal(t, want[i].Adapter, got[i].Adapter, "query %d", i)
		for k, w := range want[i].Answers {
			g := got[i].Answers[k]
			assert.Equal(t, []any{w.Answer, w.Start, w.End}, []any{g.Answer, g.Start, g.End}, "query %d answer %d", i, k)
			assert.InEpsilon(t, w.Score, g.Score, 1e-4, "query %d answer %d", i, k)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for torch.LiveTensors() != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, before, torch.LiveTensors(), "a mixed batch left tensors behind")
}
