package data

import (
	"encoding/json"
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
