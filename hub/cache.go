package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// repoCache is one repository's directory in the hub cache.
type repoCache struct {
	dir string // .../models--org--name
}

func (rc repoCache) blob(etag string) string { return filepath.Join(rc.dir, "blobs", etag) }

func (rc repoCache) snapshot(commit string) string { return filepath.Join(rc.dir, "snapshots", commit) }

func (rc repoCache) pointer(commit, name string) string {
	return filepath.Join(rc.snapshot(commit), filepath.FromSlash(name))
}

// readRef returns the commit a revision points to, or "" if unknown.
func (rc repoCache) readRef(rev string) (string, error) {
	if commitRE.MatchString(rev) {
		return rev, nil
	}
	path := filepath.Join(rc.dir, "refs", filepath.FromSlash(rev))
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	commit := strings.TrimSpace(string(b))
	if !commitRE.MatchString(commit) {
		return "", fmt.Errorf("hub: %s holds %q, not a commit hash", path, truncate(commit))
	}
	return commit, nil
}

// writeRef records the commit of a revision, as huggingface_hub does (no newline).
func (rc repoCache) writeRef(rev, commit string) error {
	if rev == commit {
		return nil
	}
	path := filepath.Join(rc.dir, "refs", filepath.FromSlash(rev))
	if err := atomicfile.Write(path, []byte(commit)); err != nil {
		return fmt.Errorf("hub: writing ref %s: %w", path, err)
	}
	return nil
}

// markMissing records that name does not exist at commit. It is a cache
// hint only, so failures are ignored.
func (rc repoCache) markMissing(commit, name string) {
	path := filepath.Join(rc.dir, ".no_exist", commit, filepath.FromSlash(name))
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		if f, err := os.Create(path); err == nil {
			f.Close()
		}
	}
}

// link points snapshots/<commit>/<name> at the blob with a relative
// symlink, replacing whatever was there; it copies where symlinks fail.
func (rc repoCache) link(commit, name, blob string) error {
	ptr := rc.pointer(commit, name)
	if err := os.MkdirAll(filepath.Dir(ptr), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(ptr), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if cur, err := os.Readlink(ptr); err == nil && cur == rel {
		return nil
	}
	if err := os.Remove(ptr); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Symlink(rel, ptr); err == nil {
		return nil
	}
	return copyFile(blob, ptr)
}

// checkBlob verifies a cached blob against the expected size (when >= 0)
// and, when its name is a sha256, its content. It returns os.ErrNotExist
// (wrapped) if absent and ErrCorrupt on a mismatch.
func checkBlob(path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("hub: %s: %w: not a regular file", path, ErrCorrupt)
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Errorf("hub: %s: %w: %d bytes, want %d", path, ErrCorrupt, fi.Size(), size)
	}
	want := filepath.Base(path)
	if !sha256RE.MatchString(want) {
		return nil
	}
	got, err := sha256File(path)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("hub: %s: %w: sha256 is %s", path, ErrCorrupt, got)
	}
	return nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hub: reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer in.Close()
	if err := atomicfile.WriteReader(dst, in); err != nil {
		return fmt.Errorf("hub: copying %s to %s: %w", src, dst, err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

type limitedReader struct {
	r io.Reader
	n int64
}

// limitReader is io.LimitReader that fails instead of stopping short.
func limitReader(r io.Reader, n int64) io.Reader { return &limitedReader{r, n} }

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
