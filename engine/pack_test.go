package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// TestEngineBF16Packed: a bf16 engine on the CPU packs its base's linears
// (bert.Model.Pack) after the adapter is in, merged or not, and answers every
// sample query with fp32's span (or, where fp32's best spans tie within
// 0.02, one of those) at a score within 0.02 of fp32's; an adapter loaded at
// run time runs over the packed base; Close frees the packed weights.
func TestEngineBF16Packed(t *testing.T) {
	if err := torch.PackedLinearAvailable(); err != nil {
		t.Skipf("no prepacked linears in this LibTorch: %v", err)
	}
	ctx := context.Background()
	want, err := tinyEngine(t, nil).AnswerBatch(ctx, topK(tinyQueries, 10))
	require.NoError(t, err)
	for _, merge := range []bool{false, true} {
		t.Run(map[bool]string{false: "adapter over the packed base", true: "merged, then packed"}[merge], func(t *testing.T) {
			noGC(t)
			live := torch.LiveTensors()
			e := tinyEngine(t, func(o *Options) { o.DType, o.Merge = gotch.BFloat16, merge })
			require.True(t, e.model.Packed())
			got, err := e.AnswerBatch(ctx, topK(tinyQueries, 3))
			require.NoError(t, err)
			likeFP32(t, want, got, 0.02, "bf16")
			if !merge {
				sameAtRunTime(t, e, got[0])
			}
			e.Close()
			assert.Equal(t, live, torch.LiveTensors(), "Close frees the tensors and the packed weights")
		})
	}
}
