package torch

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestArgumentsOutliveTheirCall: gotch frees Scalars and Tensors from Go
// finalizers. An argument made inline — ts.FloatScalar(s) in a call, as the
// attention's baddbmm and AdamW do — is unreachable once the wrapper has read
// its C handle, so unless the wrapper keeps it alive (runtime.KeepAlive, which
// tools/setup adds to every generated op) a collection during the op frees
// it under LibTorch: a "toComplexDouble" error, or a silently wrong value.
// A training run on MiniLM died of it after 130 steps. Here a collector runs
// alongside many such calls, and every result must be right.
func TestArgumentsOutliveTheirCall(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer func() { close(stop); <-done; settleFinalizers() }()

	x := ts.MustOnes([]int64{4, 16, 16}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	for i := range 20000 {
		beta, alpha := float64(i%5), float64(i%3+1)
		// beta·x + alpha·(x @ x): every element is beta + 16·alpha.
		y, err := x.Baddbmm(x, x, ts.FloatScalar(beta), ts.FloatScalar(alpha), false)
		require.NoError(t, err, "call %d", i)
		got := y.Float64Values()[0]
		y.MustDrop()
		require.Equal(t, beta+16*alpha, got, "call %d", i)
		// A tensor argument made inline is freed the same way.
		z, err := x.Add(ts.MustOnes([]int64{4, 16, 16}, gotch.Float, gotch.CPU), false)
		require.NoError(t, err, "call %d", i)
		got = z.Float64Values()[0]
		z.MustDrop()
		require.Equal(t, 2.0, got, "call %d", i)
	}
}

// settleFinalizers collects until the finalizers of the tensors this test
// left to the collector have run (LiveTensors stops falling), so that the
// tests after it count live tensors from a still baseline.
func settleFinalizers() {
	prev := -1
	for range 200 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		n := LiveTensors()
		if n == prev {
			return
		}
		prev = n
	}
}
