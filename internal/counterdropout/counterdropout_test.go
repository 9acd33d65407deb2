package counterdropout

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// TestCounterUniform: values computed by scripts/ref/peft_check.py's numpy
// counter_uniform, the other implementation of the same hash.
func TestCounterUniform(t *testing.T) {
	for _, c := range []struct {
		seed, call, i uint64
		want          float64
	}{
		{7, 0, 0, 0.771546556331567}, {7, 0, 1, 0.5230671798509814}, {7, 0, 2, 0.7390873243475791},
		{123456789, 4, 0, 0.19758955027440717}, {123456789, 4, 2, 0.5475051712906522},
	} {
		if got := CounterUniform(c.seed, c.call, c.i); got != c.want {
			t.Errorf("CounterUniform(%d, %d, %d) = %v, want %v", c.seed, c.call, c.i, got, c.want)
		}
	}
}

// TestSetDropout: a CounterDropout set with torch.SetDropout replaces LibTorch's
// dropout call for call (its masks, scaled by 1/(1-p)), and restore puts
// LibTorch's back.
func TestSetDropout(t *testing.T) {
	x := ts.MustOnes([]int64{4, 50}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	d := &CounterDropout{Seed: 3}
	restore := torch.SetDropout(d.Func())
	for k := uint64(0); k < 2; k++ {
		y := torch.Dropout(x, 0.25)
		got := torch.ToFloat32(y)
		y.MustDrop()
		want := CounterMask(3, k, 200, 0.25)
		zeros := 0
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("call %d element %d: %v, want %v", k, i, got[i], want[i])
			}
			if want[i] == 0 {
				zeros++
			}
		}
		if zeros < 20 || zeros > 80 {
			t.Errorf("call %d dropped %d of 200 at p 0.25", k, zeros)
		}
	}
	if d.Calls() != 2 {
		t.Errorf("Calls() = %d, want 2", d.Calls())
	}
	restore()
	y := torch.Dropout(x, 0.25)
	defer y.MustDrop()
	if d.Calls() != 2 {
		t.Error("LibTorch's dropout is back: the counter dropout must not run")
	}
}
