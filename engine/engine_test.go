package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/torch"
)

// TestPredictLibTorchFailure: a LibTorch failure inside predict (and eval,
// which runs the same Predict) is an error that names it, never a crash; the
// next call on the same predictor answers as before.
func TestPredictLibTorchFailure(t *testing.T) {
	_, fix := tinyFixture(t)
	p := tinyPredictor(t, fix, false)
	qs := testQueries(t, 1)
	want, err := p.Predict(context.Background(), qs)
	require.NoError(t, err)

	full := p.Model.WordEmb
	p.Model.WordEmb = full.MustNarrow(0, 0, 5, false) // 5 rows: every real token id is out of range
	_, err = p.Predict(context.Background(), qs)
	p.Model.WordEmb.MustDrop()
	p.Model.WordEmb = full
	require.Error(t, err)
	var le *torch.Error
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), "index out of range")

	got, err := p.Predict(context.Background(), qs)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}
