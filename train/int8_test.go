package train_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/train"
)

// TestInt8IsRefused: training with an int8 base is refused with an error
// that says int8 is for inference, before any work: a Job asking for it,
// and a Trainer given a quantized model.
func TestInt8IsRefused(t *testing.T) {
	const want = "dtype int8 is for inference only"
	_, err := train.Run(context.Background(), train.Job{Base: "/nonexistent", DType: gotch.Int8})
	assert.ErrorContains(t, err, want)

	m, a := tinyModel(t, gotch.Float)
	if err := m.Quantize(); err != nil {
		t.Skipf("int8 is not available here: %v", err)
	}
	feats := syntheticFeatures(4, 16, m.Config.VocabSize, 1)
	tr := &train.Trainer{Model: m, Adapter: a, Train: feats, Opt: train.DefaultOptions()}
	defer tr.Close()
	_, err = tr.Step(batchOf(t, feats))
	require.Error(t, err)
	assert.ErrorContains(t, err, want)
}
