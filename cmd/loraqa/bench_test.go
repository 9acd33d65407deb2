package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bench train reports what a step asks of LibTorch: the update (clipping,
// AdamW, zero-grad) is a handful of calls whatever the number of adapter
// tensors, no step reads the device, and no tensor outlives its step.
func TestBenchTrainCountsCallsAndSyncs(t *testing.T) {
	for _, optim := range []string{"auto", "adamw_torch", "adamw_hf"} {
		t.Run(optim, func(t *testing.T) {
			out, err := stdout(t, func() error {
				return runBench(context.Background(), []string{"train", "--shape", "tiny", "--batch", "2", "--seq", "16", "--steps", "3", "--warmup", "1", "--optim", optim})
			})
			require.NoError(t, err)
			var got struct {
				Calls      float64 `json:"calls_per_step"`
				Update     float64 `json:"optimizer_calls_per_step"`
				Syncs      float64 `json:"syncs_per_step"`
				LiveGrowth int     `json:"live_tensor_growth"`
				Optim      string  `json:"optim"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &got), out)
			assert.Equal(t, optim, got.Optim)
			assert.LessOrEqual(t, got.Update, 20.0, "update calls per step")
			assert.Greater(t, got.Update, 2.0)
			assert.Greater(t, got.Calls, got.Update)
			assert.Zero(t, got.Syncs, "host syncs per step")
			assert.Zero(t, got.LiveGrowth)
		})
	}
}
