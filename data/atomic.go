package data

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic writes path through a temporary file in the same directory:
// write, flush, fsync, then rename, so that readers never see half a file.
func writeFileAtomic(path string, write func(w *bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = write(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// WriteJSONFile writes v as indented JSON, atomically.
func WriteJSONFile(path string, v any) error {
	return writeFileAtomic(path, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// WriteExamplesJSONL writes examples as HF QA records (hf-jsonl), one per
// line, atomically.
func WriteExamplesJSONL(path string, examples []Example) error {
	return writeFileAtomic(path, func(w *bufio.Writer) error {
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
