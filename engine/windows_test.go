package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
)

// The resolution rule, case by case (HF's QA pipeline: max_seq_len =
// min(model_max_length, 384), doc_stride = min(max_seq_len // 2, 128)).
func TestWindows(t *testing.T) {
	trained := func(n, s int) *peft.Windows { return &peft.Windows{MaxSeqLength: n, DocStride: s} }
	cases := []struct {
		name                string
		userSeq, userStride int
		trained             *peft.Windows
		positions           int64
		tokMax              int
		wantSeq, wantStride int
	}{
		{"nothing recorded, 512 positions", 0, 0, nil, 512, 0, 384, 128},
		{"nothing recorded, 128 positions", 0, 0, nil, 128, 0, 128, 64},
		{"nothing recorded, tokenizer max 100", 0, 0, nil, 512, 100, 100, 50},
		{"nothing recorded, 64 positions, tokenizer max 512", 0, 0, nil, 64, 512, 64, 32},
		{"trained windows", 0, 0, trained(256, 64), 512, 0, 256, 64},
		{"trained windows past the positions: capped, pipeline stride", 0, 0, trained(384, 128), 128, 0, 128, 64},
		{"user window, trained stride does not fit it", 200, 0, trained(256, 64), 512, 0, 200, 100},
		{"user window equal to trained: trained stride", 256, 0, trained(256, 96), 512, 0, 256, 96},
		{"user stride only", 0, 50, trained(256, 64), 512, 0, 256, 50},
		{"user both", 300, 20, trained(256, 64), 512, 0, 300, 20},
		{"user window past the model is kept (refused later)", 512, 0, nil, 128, 0, 512, 128},
		{"small window", 0, 0, nil, 10, 0, 10, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := data.DefaultFeatureOptions()
			user.MaxSeqLength, user.DocStride = c.userSeq, c.userStride
			got := resolveWindows(user, c.trained, c.positions, c.tokMax)
			assert.Equal(t, c.wantSeq, got.MaxSeqLength, "max_seq_length")
			assert.Equal(t, c.wantStride, got.DocStride, "doc_stride")
			assert.Equal(t, user.Mode, got.Mode)
		})
	}
}

// The windows file round-trips; without it the data section of a
// loraqa_config.yaml counts; with neither nothing is recorded; a broken
