package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/verify"
)

// robertaBase copies the RoBERTa fixture's base (weights, config and BPE
// tokenizer) with model_max_length dropped from tokenizer_config.json, so
// that only the model's positions limit the windows.
func robertaBase(t *testing.T, fx string) string {
	t.Helper()
	src := filepath.Join(fx, "base")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		if e.Name() == data.TokenizerConfigFile {
			var cfg map[string]any
			require.NoError(t, json.Unmarshal(b, &cfg))
			delete(cfg, "model_max_length")
			b, err = json.Marshal(cfg)
			require.NoError(t, err)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	return dir
}

// TestEngineRoBERTa serves the tiny RoBERTa fixture (RobertaForQuestionAnswering
// with its BPE tokenizer and PEFT adapter, scripts/ref/make_fixtures.py roberta)
// and answers the fixture's questions:
//   - the default window is 128 tokens, max_position_embeddings 130 less
//     pad_token_id 1 + 1, not 130 (its positions start at 2);
//   - the engine's windows are HF's input ids (<s> q </s></s> c </s>);
//   - Predict's answers (its own forward, padded with <pad> = 1, through the
//     adapter) are the answers data.Postprocess gives on HF + PEFT's logits
//     of the fixture: the same spans, the same scores to 1e-4.
func TestEngineRoBERTa(t *testing.T) {
	fx := testutil.Fixture(t, "tiny-roberta-qa")
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	o := DefaultOptions()
	o.Model, o.Device = robertaBase(t, fx), gotch.CPU
	o.Adapters = []NamedAdapter{{Name: "rob", Dir: filepath.Join(fx, "adapter")}}
	e, err := Load(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	assert.Equal(t, int64(1), e.model.Config.PadTokenID)
	w, err := e.Windows("rob")
	require.NoError(t, err)
	assert.Equal(t, 128, w.MaxSeqLength, "max_position_embeddings 130 less pad_token_id + 1")
	assert.Equal(t, 64, w.DocStride)

	var fixture struct {
		Batches []struct {
			Name      string   `json:"name"`
			Questions []string `json:"questions"`
			Contexts  []string `json:"contexts"`
		} `json:"batches"`
	}
	b, err := os.ReadFile(filepath.Join(fx, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &fixture))

	sv, err := e.lookup("rob")
	require.NoError(t, err)
	for bi, batch := range exp.Batches[:2] { // padded_pair_batch, single: one window per query
		fb := fixture.Batches[bi]
		require.Equal(t, batch.Name, fb.Name)
		var qs []Query
		for i := range fb.Questions {
			qs = append(qs, Query{Question: fb.Questions[i], Context: fb.Contexts[i], TopK: 3})
		}
		feats, ex, err := featurize(sv, qs)
		require.NoError(t, err)
		require.Len(t, feats, len(qs), batch.Name)
		var starts, ends [][]float32
		for i, f := range feats {
			n := len(f.InputIDs)
			assert.Equal(t, batch.InputIDs[i][:n], f.InputIDs, "%s row %d: HF's input ids", batch.Name, i)
			for _, id := range batch.InputIDs[i][n:] {
				assert.Equal(t, int64(1), id, "HF pads with <pad> = 1")
			}
			starts = append(starts, f32(batch.BasePlusAdapter.Start[i][:n]))
			ends = append(ends, f32(batch.BasePlusAdapter.End[i][:n]))
		}
		want, err := data.Postprocess(ex, feats, starts, ends, e.opt.Post)
		require.NoError(t, err)

		got, err := e.Predict(context.Background(), qs)
		require.NoError(t, err)
		require.Len(t, got, len(qs))
		for i, r := range got {
			assert.Equal(t, "rob", r.Adapter)
			wa := answers(want[i], 3)
			require.Len(t, r.Answers, len(wa), "%s query %d", batch.Name, i)
			for k, a := range r.Answers {
				assert.Equal(t, wa[k].Answer, a.Answer, "%s query %d answer %d", batch.Name, i, k)
				assert.Equal(t, [2]int{wa[k].Start, wa[k].End}, [2]int{a.Start, a.End})
				assert.InDelta(t, wa[k].Score, a.Score, 1e-4)
				assert.Equal(t, a.Answer, string([]rune(qs[i].Context)[a.Start:a.End]))
			}
			t.Logf("%s query %d: %q (%.4f; HF's logits: %q %.4f)", batch.Name, i, r.Answers[0].Answer, r.Answers[0].Score, wa[0].Answer, wa[0].Score)
		}
	}
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
