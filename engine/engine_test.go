package engine

import (
	"context"
	"errors"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// tinyWords are the whole words of the test vocabulary, beside single
// letters, digits and their "##" continuations.
const tinyWords = "the what was revenue in million of a is who when where did it happen year company sold paris lives alice bob works at acme . , ? $ % - ( )"

// tinyDirs are the committed tiny BERT fixture's base, and a copy of its
// adapter with the test vocabulary beside it (testutil.TinyBERT).
func tinyDirs(t testing.TB) (base, adapter string) {
	t.Helper()
	return testutil.TinyBERT(t, strings.Fields(tinyWords)...)
}

// tinyEngine loads the tiny fixture's base with its adapter on the CPU,
// with the default windows unless o changes them.
func tinyEngine(t testing.TB, change func(o *Options)) *Engine {
	t.Helper()
	base, adapter := tinyDirs(t)
	o := DefaultOptions()
	o.Model, o.Device = base, gotch.CPU
	o.Adapters = []NamedAdapter{{Name: "fix", Dir: adapter}}
	if change != nil {
		change(&o)
	}
	e, err := Load(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	return e
}

// topK is qs, each asking for k answers.
func topK(qs []Query, k int) []Query {
	out := slices.Clone(qs)
	for i := range out {
		out[i].TopK = k
	}
	return out
}

var tinyQueries = []Query{
	{Question: "who works at acme?", Context: "alice works at acme. bob lives in paris."},
	{Question: "what was the revenue?", Context: "the revenue was $5 million in 2019, and the company sold it."},
	{Question: "when did it happen?", Context: strings.Repeat("the company sold a year of revenue. ", 12) + "it happened in 2019."},
}

// A model of 64 positions takes windows of 64 with stride 32 by default (HF
// pipeline's min(max_len/2, 128)), where the old fixed 384/128 failed; every
// query is answered with spans of its context, and Answer, AnswerBatch and
// Predict give the same answers.
func TestEngineDefaultWindowsAnswer(t *testing.T) {
	e := tinyEngine(t, nil)
	w, err := e.Windows("")
	require.NoError(t, err)
	assert.Equal(t, 64, w.MaxSeqLength)
	assert.Equal(t, 32, w.DocStride)
	assert.Equal(t, "fix", e.Default())

	ctx := context.Background()
	batch := topK(tinyQueries, 3)
	rs, err := e.AnswerBatch(ctx, batch)
	require.NoError(t, err)
	require.Len(t, rs, len(tinyQueries))
	preds, err := e.Predict(ctx, tinyQueries)
	require.NoError(t, err)
	for i, q := range tinyQueries {
		r := rs[i]
		assert.Equal(t, "fix", r.Adapter)
		require.Len(t, r.Answers, 3)
		for _, a := range r.Answers {
			require.GreaterOrEqual(t, a.Start, 0)
			assert.Equal(t, a.Answer, string([]rune(q.Context)[a.Start:a.End]), "query %d", i)
		}
		assert.GreaterOrEqual(t, r.Answers[0].Score, r.Answers[1].Score)
		one, err := e.Answer(ctx, q)
		require.NoError(t, err)
		assert.Equal(t, r.Answers[:1], one.Answers, "query %d alone", i)
		// Predict runs all queries' windows together: the same spans, scores
		// equal up to float32 rounding of the larger batches.
		assert.Equal(t, r.Answers[0].Answer, preds[i].Answers[0].Answer, "query %d by Predict", i)
		assert.InDelta(t, r.Answers[0].Score, preds[i].Answers[0].Score, 1e-5)
	}
	// The long context is cut into several windows: 12 sentences of 8
	// tokens and more need more than one window of 64.
	feats, _, err := featurize(e.models[0], tinyQueries[2:])
	require.NoError(t, err)
	assert.Greater(t, len(feats), 1)
}

// The errors say what kind of failure they are.
func TestEngineErrors(t *testing.T) {
	e := tinyEngine(t, func(o *Options) { o.Queue = 2 })
	ctx := context.Background()
	cases := []struct {
		name string
		qs   []Query
		kind error
		msg  string
	}{
		{"unknown adapter", []Query{{Question: "who?", Context: "alice", Adapter: "nope"}}, ErrUnknownAdapter, `unknown adapter "nope"`},
		{"empty question", []Query{{Question: " ", Context: "alice"}}, ErrBadInput, "the question is empty"},
		{"empty context", []Query{{Question: "who?", Context: ""}}, ErrBadInput, "the context is empty"},
		{"top k", []Query{{Question: "who?", Context: "alice", TopK: 21}}, ErrBadInput, "top_k 21"},
		{"question longer than a window", []Query{{Question: strings.Repeat("what ", 80), Context: "alice"}}, ErrBadInput, "cannot cut the context into windows"},
		{"more than the queue", []Query{{Question: "who?", Context: "a"}, {Question: "who?", Context: "b"}, {Question: "who?", Context: "c"}}, ErrBusy, "the queue is full (0 of 2 queries waiting)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.AnswerBatch(ctx, tc.qs)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	var qe *QueryError
	_, err := e.AnswerBatch(ctx, []Query{{Question: "who?", Context: "alice"}, {Question: "who?", Context: "alice", Adapter: "x"}})
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 1, qe.Index)

	e.Close()
	_, err = e.Answer(ctx, Query{Question: "who?", Context: "alice"})
	assert.ErrorIs(t, err, ErrClosed)
}

// Windows the user asks for that the model cannot take are refused when
// loading, with the reason.
func TestLoadRefusesImpossibleWindows(t *testing.T) {
	base, adapter := tinyDirs(t)
	cases := map[string]struct {
		maxSeq, stride int
		want           string
	}{
		"past the positions":       {128, 0, "max_seq_length 128 is longer than the model's max_position_embeddings 64"},
		"stride leaves no room":    {64, 62, "doc_stride 62 leaves no room"},
		"stride longer than a win": {0, 100, "doc_stride 100 leaves no room"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			o.Model, o.Device, o.Adapters = base, gotch.CPU, []NamedAdapter{{Name: filepath.Base(adapter), Dir: adapter}}
			o.Features.MaxSeqLength, o.Features.DocStride = c.maxSeq, c.stride
			e, err := Load(context.Background(), o)
			require.Error(t, err)
			assert.Nil(t, e)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// An adapter's recorded training windows are its default; a window capped
// by the model takes the pipeline's stride.
func TestEngineUsesTrainedWindows(t *testing.T) {
	base, adapter := tinyDirs(t)
	require.NoError(t, atomicfile.WriteJSON(filepath.Join(adapter, peft.WindowsFile), peft.Windows{MaxSeqLength: 48, DocStride: 16}))
	o := DefaultOptions()
	o.Model, o.Device, o.Adapters = base, gotch.CPU, []NamedAdapter{{Name: filepath.Base(adapter), Dir: adapter}}
	e, err := Load(context.Background(), o)
	require.NoError(t, err)
	defer e.Close()
	w, err := e.Windows("")
	require.NoError(t, err)
	assert.Equal(t, [2]int{48, 16}, [2]int{w.MaxSeqLength, w.DocStride})
	info := e.Adapters()
	require.Len(t, info, 1)
	assert.Equal(t, filepath.Base(adapter), info[0].Name)
	assert.Equal(t, 48, info[0].MaxSeqLength)
}

// Adapters load and unload at run time; queries name them.
func TestEngineLoadUnloadAdapter(t *testing.T) {
	e := tinyEngine(t, nil)
	_, other := tinyDirs(t)
	ctx := context.Background()
	before := torch.LiveTensors()
	info, err := e.LoadAdapter(ctx, "other", other)
	require.NoError(t, err)
	assert.Equal(t, AdapterInfo{Name: "other", Dir: other, R: 4, LoraAlpha: 8, TargetModules: info.TargetModules, MaxSeqLength: 64, DocStride: 32}, info)
	_, err = e.LoadAdapter(ctx, "other", other)
	assert.ErrorIs(t, err, ErrAdapterExists)
	_, err = e.LoadAdapter(ctx, "empty", t.TempDir())
	assert.ErrorIs(t, err, ErrBadAdapter)

	q := tinyQueries[0]
	want, err := e.Answer(ctx, q)
	require.NoError(t, err)
	q.Adapter = "other"
	got, err := e.Answer(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, "other", got.Adapter)
	assert.Equal(t, want.Answers, got.Answers, "the same adapter weights under another name")

	assert.ErrorIs(t, e.UnloadAdapter(ctx, "fix"), ErrBadAdapter, "the default")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, e.UnloadAdapter(cancelled, "other"), context.Canceled)
	_, err = e.Answer(ctx, q)
	require.NoError(t, err, "an unload whose context ended first leaves the adapter loaded")
	require.NoError(t, e.UnloadAdapter(ctx, "other"))
	assert.ErrorIs(t, e.UnloadAdapter(ctx, "other"), ErrUnknownAdapter)
	_, err = e.Answer(ctx, q)
	assert.ErrorIs(t, err, ErrUnknownAdapter)
	assert.Equal(t, before, torch.LiveTensors(), "the unloaded adapter's tensors were not freed")
}

// Queries from many goroutines are batched by the worker and each gets the
// answer it gets alone (run with -race).
func TestEngineConcurrent(t *testing.T) {
	e := tinyEngine(t, nil)
	ctx := context.Background()
	want := make([]Result, len(tinyQueries))
	for i, q := range tinyQueries {
		r, err := e.Answer(ctx, q)
		require.NoError(t, err)
		want[i] = r
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(tinyQueries))
	for range 8 {
		for i, q := range tinyQueries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.Answer(ctx, q)
				if err == nil && !assert.ObjectsAreEqual(want[i], r) {
					err = errors.New("a different answer under load")
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// releaseCounter counts the worker's idle memory releases.
type releaseCounter struct {
	nopObserver
	n atomic.Int64
}

func (c *releaseCounter) MemoryReleased() { c.n.Add(1) }

// TestEngineReleasesMemoryWhenIdle: the worker releases freed memory once
// after each spell of work, when ReleaseIdle passes without a query, never
// while idle from the start or twice for one spell, and never with
// ReleaseIdle 0; answers after a release are the same.
func TestEngineReleasesMemoryWhenIdle(t *testing.T) {
	ctx := context.Background()
	const idle = 30 * time.Millisecond
	obs := &releaseCounter{}
	e := tinyEngine(t, func(o *Options) { o.ReleaseIdle, o.Observer = idle, obs })
	time.Sleep(5 * idle)
	assert.Zero(t, obs.n.Load(), "nothing to release before the first query")
	want, err := e.Answer(ctx, tinyQueries[0])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return obs.n.Load() == 1 }, 5*time.Second, idle/3, "released after the query")
	time.Sleep(5 * idle)
	assert.EqualValues(t, 1, obs.n.Load(), "one release per spell of work")
	got, err := e.Answer(ctx, tinyQueries[0])
	require.NoError(t, err)
	assert.Equal(t, want, got, "the same answer after a release")
	require.Eventually(t, func() bool { return obs.n.Load() == 2 }, 5*time.Second, idle/3, "released after the next query")

	never := &releaseCounter{}
	e = tinyEngine(t, func(o *Options) { o.ReleaseIdle, o.Observer = 0, never })
	_, err = e.Answer(ctx, tinyQueries[0])
	require.NoError(t, err)
	time.Sleep(5 * idle)
	assert.Zero(t, never.n.Load(), "ReleaseIdle 0: never")
}

// TestPredictLibTorchFailure: a LibTorch failure inside predict (and eval,
// which runs the same Predict) is an error that names it, never a crash; the
// next call on the same engine answers as before.
func TestPredictLibTorchFailure(t *testing.T) {
	p := tinyEngine(t, nil)
	qs := tinyQueries[:1]
	want, err := p.Predict(context.Background(), qs)
	require.NoError(t, err)

	var full = p.model.WordEmb
	require.NoError(t, faults.OnWorker(p, func(m *bert.Model) error {
		m.WordEmb = full.MustNarrow(0, 0, 5, false) // 5 rows: every real token id is out of range
		return nil
	}))
	noGC(t)
	before := torch.LiveTensors()
	_, err = p.Predict(context.Background(), qs)
	assert.Equal(t, before, torch.LiveTensors(), "the failed forward's tensors are freed at once")
	require.NoError(t, faults.OnWorker(p, func(m *bert.Model) error {
		m.WordEmb.MustDrop()
		m.WordEmb = full
		return nil
	}))
	require.Error(t, err)
	var le *torch.Error
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), "index out of range")
	assert.NotErrorIs(t, err, ErrOutOfMemory)

	got, err := p.Predict(context.Background(), qs)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// noGC turns Go's GC off for the rest of the test: tensors freed then were
// freed explicitly, not by finalizers.
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// An out-of-memory injected mid-forward (after the forward's tensors and
// three more were made) is an ErrOutOfMemory wrapping LibTorch's error; the
// forward's tensors are freed by the time the caller has it, and the engine
// answers the next queries as before.
func TestOutOfMemoryMidForward(t *testing.T) {
	e := tinyEngine(t, nil)
	want, err := e.AnswerBatch(context.Background(), tinyQueries)
	require.NoError(t, err)
	var fired atomic.Bool
	defer faults.SetForward(func(int) {
		if fired.CompareAndSwap(false, true) {
			for range 3 {
				ts.MustOnes([]int64{16, 32}, gotch.Float, gotch.CPU)
			}
			panic(&ts.LoraqaError{Err: errors.New("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.77 GiB total capacity)")})
		}
	})()
	noGC(t)
	before := torch.LiveTensors()
	_, err = e.Answer(context.Background(), tinyQueries[2])
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrOutOfMemory)
	var le *torch.Error
	require.ErrorAs(t, err, &le)
	assert.True(t, le.IsOutOfMemory())
	assert.Contains(t, err.Error(), "model: forward pass: libtorch: CUDA out of memory. Tried to allocate 20.00 MiB")
	assert.Equal(t, before, torch.LiveTensors())

	got, err := e.AnswerBatch(context.Background(), tinyQueries)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, before, torch.LiveTensors())
}
