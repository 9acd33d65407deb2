package serve

import (
	"encoding/json"
	"errors"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/torch"
)

// cudaOOM is the message LibTorch's CUDA caching allocator fails with.
const cudaOOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity; 77.52 GiB already allocated; 1.12 GiB free; 77.90 GiB reserved in total by PyTorch)"

// oomFault makes the next forward pass, once armed, allocate three more
// tensors after its own and then fail as LibTorch does when CUDA runs out of
// memory. It records the live tensors at the moment of the failure.
type oomFault struct {
	armed  atomic.Bool
	fired  atomic.Int32
	atFail atomic.Int64
}

func installOOMFault(t *testing.T) *oomFault {
	f := &oomFault{}
	t.Cleanup(faults.SetForward(func(int) {
		if !f.armed.CompareAndSwap(true, false) {
			return
		}
		for range 3 {
			ts.MustOnes([]int64{64, 768}, gotch.Float, gotch.CPU) // activations the failed forward leaves
		}
		f.atFail.Store(int64(torch.LiveTensors()))
		f.fired.Add(1)
		panic(&ts.LoraqaError{Err: errors.New(cudaOOM)})
	}))
	return f
}

// noCollector turns Go's GC off for the rest of the test: tensors freed
// then were freed explicitly, not by finalizers.
func noCollector(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// assertOOMReply checks a 503 for an out-of-memory: Retry-After, serve's
// error schema, and the message naming the out-of-memory.
func assertOOMReply(t *testing.T, code int, b []byte, h http.Header) {
	t.Helper()
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	assert.Equal(t, "1", h.Get("Retry-After"))
	var body map[string]string
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	assert.Len(t, body, 1, "only the error field: %s", b)
	assert.Contains(t, body["error"], "out of memory: model: forward pass: libtorch: "+cudaOOM)
	assert.Contains(t, body["error"], "retry later")
}

// An out-of-memory in the middle of a forward pass answers 503, frees the
// tensors of that forward at once (no GC runs), empties the CUDA cache, and
// the next requests are answered as before.
func TestServeOutOfMemoryFreesAndRecovers(t *testing.T) {
	fix, qs, want := fixtureAnswers(t, 4)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix}))
	emptied := atomic.Int32{}
	restore := torch.SetEmptyCUDACache(func() { emptied.Add(1) })
	defer func() { _ = torch.SetEmptyCUDACache(restore) }()
	fault := installOOMFault(t)
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[0], "", 1))
	require.Equal(t, http.StatusOK, code, "%s", b)

	noCollector(t)
	before := torch.LiveTensors()
	fault.armed.Store(true)
	code, b, h := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[3], "", 1))
	assertOOMReply(t, code, b, h)
	require.EqualValues(t, 1, fault.fired.Load())
	assert.GreaterOrEqual(t, fault.atFail.Load(), int64(before+3+2), "the forward had its inputs, outputs and three more tensors live when it failed")
	assert.Equal(t, before, torch.LiveTensors(), "the failed forward's tensors are freed before the reply, with no GC")
	assert.EqualValues(t, 1, emptied.Load(), "the CUDA cache is emptied after the failure")

	for i, q := range qs {
		code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 1))
		require.Equal(t, http.StatusOK, code, "query %d after the failure: %s", i, b)
		assert.Equal(t, want[i], decodeAnswer(t, b).Answers, "query %d after the failure", i)
	}
	assert.Equal(t, before, torch.LiveTensors())
	assert.EqualValues(t, 1, emptied.Load())
}

// No cascade: n requests queued together run in one cycle of the worker and
// the forward of the first fails. Unfused, each request has its own forward:
// that one request gets the 503 and the n-1 others their answers. Fused, the
// cycle's requests share the forward that failed: all n get the 503. The
// request before them and the ones after are answered.
func TestServeOutOfMemoryNoCascade(t *testing.T) {
	const n = 6
	cases := map[string]struct {
		fuse   bool
		failed int
	}{
		"unfused: only the request whose forward failed": {fuse: false, failed: 1},
		"fused: the requests of the failed forward":      {fuse: true, failed: n},
	}
	fix, qs, want := fixtureAnswers(t, n+1)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			release, entered := make(chan struct{}), make(chan struct{}, 1)
			var cycles atomic.Int32
			fault := installOOMFault(t)
			o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
			o.MaxBatch, o.BatchWindow, o.Fuse = n, 0, c.fuse
			s, hs := startServer(t, o)
			t.Cleanup(faults.SetBeforeCycle(s.Engine(), func() {
				switch cycles.Add(1) {
				case 1: // the first request holds the worker while the n queue up
					entered <- struct{}{}
					<-release
				case 2: // the n queued requests: the first forward fails
					fault.armed.Store(true)
				}
			}))
			noCollector(t)
			before := torch.LiveTensors()

			type reply struct {
				i, code int
				body    []byte
				h       http.Header
			}
			replies := make(chan reply, n+1)
			var wg sync.WaitGroup
			send := func(i int) {
				defer wg.Done()
				code, b, h := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[i], "", 1))
				replies <- reply{i, code, b, h}
			}
			wg.Add(1)
			go send(n)
			<-entered
			for i := range n {
				wg.Add(1)
				go send(i)
			}
			waitFor(t, func() bool { return s.gauges().queueDepth == n })
			close(release)
			wg.Wait()
			close(replies)

			failed := 0
			for r := range replies {
				if r.code == http.StatusServiceUnavailable {
					failed++
					require.NotEqual(t, n, r.i, "the request before the failed cycle is answered")
					assertOOMReply(t, r.code, r.body, r.h)
					continue
				}
				require.Equal(t, http.StatusOK, r.code, "query %d: %s", r.i, r.body)
				assert.Equal(t, want[r.i], decodeAnswer(t, r.body).Answers, "query %d", r.i)
			}
			assert.Equal(t, c.failed, failed)
			assert.EqualValues(t, 1, fault.fired.Load())
			assert.EqualValues(t, 2, cycles.Load(), "the n requests ran in one cycle")
			assert.Equal(t, before, torch.LiveTensors(), "no tensor of the failed forward is left")

			code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[0], "", 1))
			require.Equal(t, http.StatusOK, code, "%s", b)
			assert.Equal(t, want[0], decodeAnswer(t, b).Answers)
		})
	}
}
