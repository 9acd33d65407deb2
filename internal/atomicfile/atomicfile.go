// Package atomicfile writes files so that a reader (or a crash) sees either the
// old content or the new one: a synced temporary file in the same directory,
// then a rename.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// WriteReader writes r to path through a synced temporary file and a rename,
// creating the directory if needed. On error nothing is left behind.
func WriteReader(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Write writes b to path as WriteReader does.
func Write(path string, b []byte) error { return WriteReader(path, bytes.NewReader(b)) }
