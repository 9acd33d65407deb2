package bert_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

// TestPaddedPositionIDs: RoBERTa's position ids, worked out by hand from HF's
// create_position_ids_from_input_ids (cumsum(ids != pad)·(ids != pad) + pad,
// pad 1): real tokens count from 2, right padding stays at 1, and a pad id
// inside a row is skipped (the count does not advance over it).
func TestPaddedPositionIDs(t *testing.T) {
	ids := []int64{
		0, 50, 60, 2, 2, 70, 2, 1, 1, // <s> q </s></s> c </s> <pad> <pad>
		0, 50, 60, 2, 2, 70, 80, 90, 2, // no padding: 2..10
		1, 50, 1, 60, 2, 1, 1, 1, 1, // pads anywhere are position 1
	}
	want := []int64{
		2, 3, 4, 5, 6, 7, 8, 1, 1,
		2, 3, 4, 5, 6, 7, 8, 9, 10,
		1, 2, 1, 3, 4, 1, 1, 1, 1,
	}
	in := torch.FromInt64(ids, []int64{3, 9}, gotch.CPU)
	defer in.MustDrop()
	pos := bert.PaddedPositionIDs(in, 1)
	defer pos.MustDrop()
	assert.Equal(t, []int64{3, 9}, pos.MustSize())
	assert.Equal(t, gotch.Int64, pos.DType())
	assert.Equal(t, want, pos.Int64Values())

	// Another pad id (a RoBERTa-style model whose <pad> is 0) shifts everything.
	pos0 := bert.PaddedPositionIDs(in, 0)
	defer pos0.MustDrop()
	got := pos0.Int64Values()
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8}, got[9:18], "row 2 starts with id 0, a pad here")
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, got[18:27], "no id is 0 in row 3: 1..9")
}

// TestRoBERTaConfig: model_type roberta takes RobertaConfig's defaults
// (pad_token_id 1, vocab 50265), and its windows are max_position_embeddings
// less pad_token_id + 1 (roberta-base: 514 positions, 512 tokens); an old
// config naming only RobertaForQuestionAnswering is RoBERTa too.
func TestRoBERTaConfig(t *testing.T) {
	c, err := bert.ParseConfig([]byte(`{"model_type": "roberta", "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5}`))
	require.NoError(t, err)
	assert.Equal(t, int64(1), c.PadTokenID)
	assert.Equal(t, int64(50265), c.VocabSize)
	assert.Equal(t, int64(1), c.TypeVocabSize)
	assert.Equal(t, 1e-5, c.LayerNormEps)
	assert.Equal(t, int64(512), c.MaxWindow())
	assert.True(t, c.BertLayout())
	assert.True(t, c.PaddedPositions())
	assert.Equal(t, "RobertaForQuestionAnswering", c.Architecture())
	assert.NoError(t, c.CheckInputs(512, 50265))
	assert.ErrorContains(t, c.CheckInputs(513, 50265),
		"max_seq_length 513 is longer than the model takes (max_position_embeddings 514 less pad_token_id 1 + 1): use windows of at most 512 tokens")

	c, err = bert.ParseConfig([]byte(`{"architectures": ["RobertaForQuestionAnswering"], "hidden_size": 32, "num_attention_heads": 4}`))
	require.NoError(t, err)
	assert.Equal(t, "roberta", c.ModelType)
	assert.Equal(t, int64(510), c.MaxWindow(), "RobertaConfig's default 512 positions")

	b, err := bert.ParseConfig([]byte(`{"model_type": "bert"}`))
	require.NoError(t, err)
	assert.Equal(t, int64(0), b.PadTokenID)
	assert.Equal(t, b.MaxPositions, b.MaxWindow(), "BERT's positions start at 0")
	assert.False(t, b.PaddedPositions())

	_, err = bert.ParseConfig([]byte(`{"model_type": "roberta", "max_position_embeddings": 2}`))
	assert.ErrorContains(t, err, "max_position_embeddings 2 leaves no position after pad_token_id 1")
}
