package engine

import (
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
)

// pipelineMaxSeq is the window of Hugging Face's question-answering
// pipeline when nothing else says: 384 tokens, capped by the model.
const pipelineMaxSeq = 384

// resolveWindows resolves the windows queries are cut into.
//
// MaxSeqLength: the user's when given (> 0); else the adapter's training
// windows (peft.Dir.Windows); else Hugging Face's QA pipeline rule, 384.
// Either default is capped by the model's limit: the smaller of
// modelPositions (bert.Config.MaxWindow: max_position_embeddings, less
// RoBERTa's pad_token_id + 1) and tokenizerMax (model_max_length; 0 = none).
//
// DocStride: the user's when given (> 0); else the adapter's, when the
// window is the one it was trained with; else the pipeline rule
// min(max_seq_length / 2, 128).
//
// A window the user asked for that the model cannot take is not capped: the
// engine refuses it when loading (bert.Config.CheckInputs), as is a stride
// that leaves no room (data.Featurize).
func resolveWindows(user data.FeatureOptions, trained *peft.Windows, modelPositions int64, tokenizerMax int) data.FeatureOptions {
	out := user
	limit := int(modelPositions)
	if tokenizerMax > 0 && (limit <= 0 || tokenizerMax < limit) {
		limit = tokenizerMax
	}
	capped := func(n int) int {
		if limit > 0 && n > limit {
			return limit
		}
		return n
	}
	switch {
	case user.MaxSeqLength > 0:
	case trained != nil:
		out.MaxSeqLength = capped(trained.MaxSeqLength)
	default:
		out.MaxSeqLength = capped(pipelineMaxSeq)
	}
	if user.DocStride <= 0 {
		if trained != nil && trained.MaxSeqLength == out.MaxSeqLength {
			out.DocStride = trained.DocStride
		} else {
			out.DocStride = min(out.MaxSeqLength/2, 128)
		}
	}
	return out
}
