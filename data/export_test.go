package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Helpers that only the tests use: readers of the files Prepare and
// WriteFeaturesJSONL write, and accessors of Feature and Tokenizer.

// ReadExamplesJSONL reads a file written by WriteExamplesJSONL (or any
// hf-jsonl file). A record that is skipped is an error here: these files are
// expected to be clean.
func ReadExamplesJSONL(path string) ([]Example, error) {
	r, err := ReadFile(path, FormatHFJSONL)
	if err != nil {
		return nil, err
	}
	if len(r.Skipped) > 0 || len(r.DroppedAnswers) > 0 {
		return nil, fmt.Errorf("%s: %w (skipped %v, dropped answers %v)", path, errUnclean, r.Skipped, r.DroppedAnswers)
	}
	return r.Examples, nil
}

// ReadFeaturesJSONL reads a file written by WriteFeaturesJSONL.
func ReadFeaturesJSONL(path string) ([]Feature, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read features: %w", err)
	}
	var feats []Feature
	err = forEachLine(data, func(n int, line []byte) error {
		var f Feature
		if err := json.Unmarshal(line, &f); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, jsonErrorAt(line, err))
		}
		feats = append(feats, f)
		return nil
	})
	return feats, err
}

// ContextRange returns the first and last token index of the context in the
// feature (last < first when the window holds no context token).
func (f *Feature) ContextRange() (first, last int) {
	first, last = -1, -2
	for i, o := range f.Offsets {
		if o != NoOffset {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, -1
	}
	return first, last
}

// UNK is the id of the unknown token.
func (t *Tokenizer) UNK() int64 { return t.unk }

// TokenToID returns the id of a token.
func (t *Tokenizer) TokenToID(tok string) (int64, bool) {
	id, ok := t.vocab[tok]
	return int64(id), ok
}

var errUnclean = errors.New("records were skipped or answers dropped")

// PAD is the id of the padding token ([PAD] 0 for BERT, <pad> 1 for RoBERTa),
// for the tests.
func (t *Tokenizer) PAD() int64 { return t.pad }
