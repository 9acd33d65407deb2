package qa_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/qa"
)

// expected is the part of testdata/tiny-bert-qa/expected.json (made with
// PyTorch, transformers and PEFT) that these tests read.
type expected struct {
	Tolerance float64 `json:"tolerance_abs"`
	Batches   []struct {
		Name          string    `json:"name"`
		InputIDs      [][]int64 `json:"input_ids"`
		AttentionMask [][]int64 `json:"attention_mask"`
		TokenTypeIDs  [][]int64 `json:"token_type_ids"`
		Base          logits    `json:"base"`
		WithAdapter   logits    `json:"base_plus_adapter"`
	} `json:"batches"`
}

type logits struct {
	Start [][]float64 `json:"start_logits"`
	End   [][]float64 `json:"end_logits"`
}

// Logits over windows of different lengths, in batches of any size (the
// batcher pads each batch to its longest window), gives each window the
// logits of the Python reference for its tokens, with and without the
// adapter; a cancelled context stops it.
func TestLogitsMatchReference(t *testing.T) {
	fx := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa")
	b, err := os.ReadFile(filepath.Join(fx, "expected.json"))
	require.NoError(t, err)
	var want expected
	require.NoError(t, json.Unmarshal(b, &want))
	m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{})
	require.NoError(t, err)
	defer m.Drop()

	var feats []data.Feature
	var ref []struct{ base, adapter [2][]float64 }
	for _, batch := range want.Batches {
		for r, ids := range batch.InputIDs {
			n := 0
			for _, a := range batch.AttentionMask[r] {
				n += int(a)
			}
			if n < len(ids) && batch.AttentionMask[r][n] != 0 {
				continue // not right-padded: not a window
			}
			f := data.Feature{InputIDs: ids[:n], AttentionMask: batch.AttentionMask[r][:n]}
			if batch.TokenTypeIDs != nil {
				f.TokenTypeIDs = batch.TokenTypeIDs[r][:n]
			}
			feats = append(feats, f)
			ref = append(ref, struct{ base, adapter [2][]float64 }{
				[2][]float64{batch.Base.Start[r][:n], batch.Base.End[r][:n]},
				[2][]float64{batch.WithAdapter.Start[r][:n], batch.WithAdapter.End[r][:n]},
			})
		}
	}
	require.GreaterOrEqual(t, len(feats), 3)
	check := func(name string, batchSize int, adapter bool) {
		starts, ends, _, err := qa.Logits(context.Background(), m, feats, batchSize, false)
		require.NoError(t, err)
		require.Len(t, starts, len(feats))
		for i := range feats {
			w := ref[i].base
			if adapter {
				w = ref[i].adapter
			}
			require.Len(t, starts[i], len(feats[i].InputIDs), "%s window %d", name, i)
			for j := range starts[i] {
				assert.InDelta(t, w[0][j], starts[i][j], want.Tolerance, "%s window %d start %d", name, i, j)
				assert.InDelta(t, w[1][j], ends[i][j], want.Tolerance, "%s window %d end %d", name, i, j)
			}
		}
	}
	check("base, batch 1", 1, false)
	check("base, batch 3", 3, false)
	a, err := peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	defer a.Drop()
	check("adapter, batch 2", 2, true)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err = qa.Logits(ctx, m, feats, 1, false)
	assert.ErrorIs(t, err, context.Canceled)
}
