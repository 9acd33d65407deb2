// Package atomicfile writes files so that a reader (or a crash) sees either the
// old content or the new one: a synced temporary file in the same directory,
// then a rename, then a sync of the directory. It is the only place in the
// module that writes a file this way; it is pure Go (no cgo), so packages that
// must not depend on LibTorch (data, tools/setup) use it too.
package atomicfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// TempPattern is the os.CreateTemp pattern of the temporary file written next
// to path: hidden, and ending in ".tmp", so that leftovers are easy to find.
func TempPattern(path string) string { return "." + filepath.Base(path) + ".*.tmp" }

// WriteFunc creates path's directory if needed, calls write with a buffered
// writer on a temporary file in that directory, then flushes, syncs and
// renames it over path (mode 0644). When write (or any step) fails, path keeps
// its old content and the temporary file is removed. Errors name path.
func WriteFunc(path string, write func(w io.Writer) error) (err error) {
	tmp, err := tempBeside(path, os.CreateTemp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	SyncDir(filepath.Dir(path))
	return nil
}

// WriteReader writes what r yields to path as WriteFunc does.
func WriteReader(path string, r io.Reader) error {
	return WriteFunc(path, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// Write writes b to path as WriteFunc does.
func Write(path string, b []byte) error { return WriteReader(path, bytes.NewReader(b)) }

// tempBeside creates path's directory if needed, then a temporary file or
// directory in it named after path (TempPattern) with create: os.CreateTemp
// or os.MkdirTemp. Errors name path.
func tempBeside[T any](path string, create func(dir, pattern string) (T, error)) (T, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		var zero T
		return zero, fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := create(dir, TempPattern(path))
	if err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

// SyncDir makes renames in dir durable where the platform allows it (a
// directory fsync); failures are ignored, the files themselves being synced.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// WriteDir builds a directory at path whole: fill writes every file into a
// new temporary directory beside path, which is then renamed into place, so
// that a reader (or a crash) sees the old directory or the new one, never a
// mix. An existing directory at path is replaced; its entries for which
// carry reports true (files path's owner does not write, such as a user's
// notes) are moved into the new one first. When fill fails, path is left as
// it was.
func WriteDir(path string, fill func(tmp string) error, carry func(name string) bool) (err error) {
	path = filepath.Clean(path)
	parent := filepath.Dir(path)
	tmp, err := tempBeside(path, os.MkdirTemp)
	if err != nil {
		return err
	}
	var moved []string // carried entries, put back if the swap fails
	defer func() {
		if err != nil {
			for _, name := range moved {
				_ = os.Rename(filepath.Join(tmp, name), filepath.Join(path, name))
			}
			os.RemoveAll(tmp)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	old, statErr := os.ReadDir(path)
	if statErr != nil && !os.IsNotExist(statErr) {
		return fmt.Errorf("write %s: %w", path, statErr)
	}
	if statErr == nil {
		for _, e := range old {
			if carry != nil && carry(e.Name()) {
				if _, err := os.Lstat(filepath.Join(tmp, e.Name())); err == nil {
					continue // written anew
				}
				if err = os.Rename(filepath.Join(path, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
					return fmt.Errorf("write %s: %w", path, err)
				}
				moved = append(moved, e.Name())
			}
		}
		trash := tmp + ".old"
		if err = os.Rename(path, trash); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err = os.Rename(tmp, path); err != nil {
			_ = os.Rename(trash, path)
			return fmt.Errorf("write %s: %w", path, err)
		}
		os.RemoveAll(trash)
		SyncDir(parent)
		return nil
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	SyncDir(parent)
	return nil
}

// WriteJSON writes v to path as indented JSON with a final newline, as
// WriteFunc does.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Write(path, append(b, '\n'))
}
