package bert_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
)

func TestSafetensorsAndBinAreIdentical(t *testing.T) {
	fx := testutil.Shared(t, "fixtures", "tiny-distilbert-qa", "base")
	a, err := bert.ReadSafetensors(filepath.Join(fx, "model.safetensors"))
	require.NoError(t, err)
	b, err := bert.ReadTorchBin(filepath.Join(fx, "pytorch_model.bin"))
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	for k, va := range a {
		vb, ok := b[k]
		require.True(t, ok, k)
		assert.Equal(t, va.Shape, vb.Shape, k)
		assert.Equal(t, va.Data, vb.Data, "%s: values must be bit-identical", k)
	}
}
