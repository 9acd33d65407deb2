package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// writeFileAtomic writes path through internal/atomicfile (a synced
// temporary file renamed into place), so that readers never see half a file.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	return atomicfile.WriteFunc(path, write)
}

// WriteJSONFile writes v as indented JSON, atomically.
func WriteJSONFile(path string, v any) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// WriteExamplesJSONL writes examples as HF QA records (hf-jsonl), one per
// line, atomically.
func WriteExamplesJSONL(path string, examples []Example) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for i := range examples {
			if err := enc.Encode(&examples[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

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

var errUnclean = errors.New("records were skipped or answers dropped")
