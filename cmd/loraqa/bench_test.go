package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// benchJSON runs `loraqa bench` with args and, where it succeeds, decodes
// the JSON it prints into got; it returns runBench's error for the caller to
// check, or to skip on.
func benchJSON(t *testing.T, got any, args ...string) error {
	t.Helper()
	out, err := stdout(t, func() error { return runBench(context.Background(), args) })
	if err == nil {
		require.NoError(t, json.Unmarshal([]byte(out), got), out)
	}
	return err
}

// TestBenchTrainCountsCallsAndSyncs: bench train reports what a step asks of LibTorch: the update (clipping,
// AdamW, zero-grad) is a handful of calls whatever the number of adapter
// tensors, no step reads the device, and no tensor outlives its step.
func TestBenchTrainCountsCallsAndSyncs(t *testing.T) {
	for _, optim := range []string{"auto", "adamw_torch", "adamw_hf"} {
		t.Run(optim, func(t *testing.T) {
			var got struct {
				Calls      float64 `json:"calls_per_step"`
				Update     float64 `json:"optimizer_calls_per_step"`
				Syncs      float64 `json:"syncs_per_step"`
				LiveGrowth int     `json:"live_tensor_growth"`
				Optim      string  `json:"optim"`
			}
			require.NoError(t, benchJSON(t, &got, "train", "--shape", "tiny", "--batch", "2", "--seq", "16", "--steps", "3", "--warmup", "1", "--optim", optim))
			assert.Equal(t, optim, got.Optim)
			assert.LessOrEqual(t, got.Update, 20.0, "update calls per step")
			assert.Greater(t, got.Update, 2.0)
			assert.Greater(t, got.Calls, got.Update)
			assert.Zero(t, got.Syncs, "host syncs per step")
			assert.Zero(t, got.LiveGrowth)
		})
	}
}

// TestBenchInferInt8: bench infer --dtype int8 runs the quantized base (LoRA over it, or merged
// first) and says so, with the resident memory beside the peak; bench train
// refuses int8.
func TestBenchInferInt8(t *testing.T) {
	for _, args := range [][]string{{}, {"--merged"}} {
		var got struct {
			DType  string  `json:"dtype"`
			Merged bool    `json:"merged"`
			Peak   float64 `json:"peak_rss_mb"`
			RSS    float64 `json:"rss_mb"`
			Median float64 `json:"step_ms_median"`
		}
		err := benchJSON(t, &got, append([]string{"infer", "--shape", "tiny", "--batch", "1", "--seq", "16", "--steps", "2", "--warmup", "1", "--dtype", "int8"}, args...)...)
		if err != nil && strings.Contains(err.Error(), "fbgemm") {
			t.Skipf("int8 is not available in this LibTorch: %v", err)
		}
		require.NoError(t, err)
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

// bench serve runs the three ways of batching over random adapters of the
// tiny base and prints a line each: throughput, latency, and the worker's
// adapter switches (fewer when the adapters mix in one forward).
func TestBenchServe(t *testing.T) {
	base := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	out, err := stdout(t, func() error {
		return runBench(context.Background(), []string{"serve", "--model", base, "--data", testutil.SQuAD2Sample(t, 4),
			"--adapters", "3", "--clients", "4", "--requests", "24", "--warmup", "4", "--max-seq-length", "64", "--doc-stride", "32"})
	})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	switches := map[string]int{}
	for _, l := range lines {
		var r struct {
			Batching string   `json:"batching"`
			ReqPerS  float64  `json:"req_per_s"`
			P99      float64  `json:"p99_ms"`
			Cycles   int      `json:"cycles"`
			Switches int      `json:"adapter_switches"`
			Flags    []string `json:"cpu_flags"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		assert.Greater(t, r.ReqPerS, 0.0, l)
		assert.Greater(t, r.P99, 0.0, l)
		assert.Positive(t, r.Cycles, l)
		assert.NotNil(t, r.Flags, l)
		switches[r.Batching] = r.Switches
	}
	assert.Positive(t, switches["per-adapter"], "one adapter at a time swaps them")
	assert.Less(t, switches["mixed"], switches["per-adapter"], "mixed cycles swap none (only cycles of one adapter do)")
}
