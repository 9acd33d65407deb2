package torch

import (
	"errors"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// noGC turns the collector off for the rest of the test: a live-tensor count
// that comes back then owes nothing to finalizers.
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// Guard frees at once the tensors that failed work created, whatever the
// failure, and leaves those of work that succeeded to their caller.
func TestGuardFreesTheTensorsOfFailedWork(t *testing.T) {
	noGC(t)
	oom := &ts.LoraqaError{Err: errors.New("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)")}
	cases := map[string]struct {
		fail      func(a *ts.Tensor)
		wantErr   string // the *Error's message; "" when the panic goes on
		wantPanic any
		oom       bool
	}{
		"libtorch failure": {
			fail:    func(a *ts.Tensor) { a.MustMatmul(a, false) }, // [2,4]x[2,4]: shapes that do not fit
			wantErr: "cannot be multiplied",
		},
		"injected CUDA out of memory": {
			fail:    func(*ts.Tensor) { panic(oom) },
			wantErr: "CUDA out of memory",
			oom:     true,
		},
		"real CPU allocation failure": {
			fail:    func(*ts.Tensor) { ts.MustEmpty([]int64{1 << 25, 1 << 25}, gotch.Float, gotch.CPU) }, // 4 PiB
			wantErr: "allocate",
			oom:     true,
		},
		"go panic": {
			fail:      func(*ts.Tensor) { panic("not libtorch") },
			wantPanic: "not libtorch",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := LiveTensors()
			emptied := 0
			restore := SetEmptyCUDACache(func() { emptied++ })
			defer func() { _ = SetEmptyCUDACache(restore) }()
			work := func() {
				a := ts.MustOnes([]int64{2, 4}, gotch.Float, gotch.CPU)
				b := a.MustMulScalar(ts.FloatScalar(2), false)
				_ = b.MustRelu(false)
				require.Equal(t, before+3, LiveTensors(), "the work's tensors are live until it fails")
				c.fail(a)
			}
			if c.wantPanic != nil {
				assert.PanicsWithValue(t, c.wantPanic, func() { _ = Guard(work) })
			} else {
				err := Guard(work)
				var le *Error
				require.ErrorAs(t, err, &le)
				assert.Contains(t, le.Msg, c.wantErr)
				assert.Equal(t, c.oom, le.IsOutOfMemory())
			}
			assert.Equal(t, before, LiveTensors(), "every tensor the failed work made is freed at once")
			assert.Equal(t, 1, emptied, "the CUDA cache is emptied once")
		})
	}
}

func TestGuardKeepsWhatSucceededAndWhatOthersMade(t *testing.T) {
	noGC(t)
	before := LiveTensors()
	emptied := 0
	restore := SetEmptyCUDACache(func() { emptied++ })
	defer func() { _ = SetEmptyCUDACache(restore) }()

	var kept *ts.Tensor
	require.NoError(t, Guard(func() { kept = ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU) }))
	assert.Equal(t, before+1, LiveTensors(), "the result of work that succeeded stays the caller's")
	assert.Equal(t, []float32{1, 1, 1}, ToFloat32(kept))
	kept.MustDrop()

	// A tensor another goroutine makes while the guarded work runs is not the work's.
	var other *ts.Tensor
	err := Guard(func() {
		done := make(chan struct{})
		go func() { other = ts.MustZeros([]int64{2}, gotch.Float, gotch.CPU); close(done) }()
		<-done
		ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
		panic(&ts.LoraqaError{Err: errors.New("CUDA out of memory. Tried to allocate 20.00 MiB")})
	})
	require.Error(t, err)
	assert.Equal(t, before+1, LiveTensors(), "only the guarded goroutine's tensor is freed")
	assert.Equal(t, []float32{0, 0}, ToFloat32(other), "the other goroutine's tensor is intact")
	other.MustDrop()
	assert.Equal(t, 1, emptied, "emptied after the failure only")
	assert.Equal(t, before, LiveTensors())
}

// Nested guards: the inner failure frees the inner work's tensors only; the
// outer work goes on with its own.
func TestGuardNested(t *testing.T) {
	noGC(t)
	before := LiveTensors()
	var outer *ts.Tensor
	require.NoError(t, Guard(func() {
		outer = ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
		err := Guard(func() {
			ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
			panic(&ts.LoraqaError{Err: errors.New("CUDA out of memory")})
		})
		require.Error(t, err)
	}))
	assert.Equal(t, before+1, LiveTensors())
	assert.Equal(t, []float32{1, 1}, ToFloat32(outer))
	outer.MustDrop()
}
