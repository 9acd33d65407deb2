// Package data turns raw question/answer material into what an extractive QA
// model trains on, and turns the model's logits back into answers.
//
// The flow is one way:
//
//	ReadFile      raw file (qa-text, csv/tsv, jsonl, SQuAD, HF jsonl) → ReadResult
//	BuildDataset  Q&A pairs without contexts → one joined context; contexts kept → []Example
//	Split         seeded train/test split
//	Prepare       all of the above, writing train.jsonl, test.jsonl and report.json
//	LoadTokenizer BERT WordPiece (HF BertTokenizerFast) or RoBERTa byte-level BPE
//	              (HF RobertaTokenizerFast) tokenizer, from a model directory's files
//	Featurize     windows of max_seq_length with doc_stride overlap, labelled as HF run_qa does
//	Batcher       padded int64 batches with seeded per-epoch shuffling
//	Postprocess   best span over all windows of an example (HF postprocess_qa_predictions)
//	Evaluate      official SQuAD v1.1 exact match and F1
//	EvaluateV2    official SQuAD 2.0 evaluation (exact, f1, HasAns/NoAns, best thresholds)
//
// SQuAD 2.0: questions without an answer (is_impossible, or no answers) are
// read and kept with no answers; Featurize labels every window of theirs at
// [CLS] (0, 0), as it labels windows that do not hold the answer.
// ResolveVersion2 turns HF's version_2_with_negative on when the data has
// such questions; with it, Postprocess lets the null answer "" compete
// (PostprocessOptions.Version2WithNegative, NullScoreDiffThreshold), and
// WritePredictionFiles writes predictions.json and null_odds.json for
// EvaluateV2 or the official script.
//
// All character offsets in this package (answer_start, feature offsets,
// prediction spans) count Unicode code points, as Python string indices do.
//
// The package is pure Go: it uses github.com/sugarme/tokenizer for the
// WordPiece model and the byte-level alphabet, and never links LibTorch.
package data
