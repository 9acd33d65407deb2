package main

import (
	"context"
	"encoding/json"
	"strings"
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

// bench infer --dtype int8 runs the quantized base (LoRA over it, or merged
// first) and says so, with the resident memory beside the peak; bench train
// refuses int8.
func TestBenchInferInt8(t *testing.T) {
	for _, args := range [][]string{{}, {"--merged"}} {
		out, err := stdout(t, func() error {
			return runBench(context.Background(), append([]string{"infer", "--shape", "tiny", "--batch", "1", "--seq", "16", "--steps", "2", "--warmup", "1", "--dtype", "int8"}, args...))
		})
		if err != nil && strings.Contains(err.Error(), "fbgemm") {
			t.Skipf("int8 is not available in this LibTorch: %v", err)
		}
		require.NoError(t, err)
		var got struct {
			DType  string  `json:"dtype"`
			Merged bool    `json:"merged"`
			Peak   float64 `json:"peak_rss_mb"`
			RSS    float64 `json:"rss_mb"`
			Median float64 `json:"step_ms_median"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		assert.Equal(t, "int8", got.DType)
		assert.Equal(t, len(args) == 1, got.Merged)
		assert.Greater(t, got.RSS, 0.0)
		assert.GreaterOrEqual(t, got.Peak, got.RSS*0.99)
		assert.Greater(t, got.Median, 0.0)
	}
	_, err := stdout(t, func() error {
		return runBench(context.Background(), []string{"train", "--shape", "tiny", "--dtype", "int8"})
	})
	assert.ErrorContains(t, err, "int8 is for inference only")
}
