package data

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot walks up from the test's working directory to the go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test directory")
		dir = parent
	}
}

// sharedDir is ../shared beside the repository, or $LORAQA_SHARED; the test
// is skipped when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LORAQA_SHARED")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test material not found at %s (set LORAQA_SHARED): %v", dir, err)
	}
	return dir
}

// sharedFile is a file under sharedDir; the test is skipped when it is absent.
func sharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared file %s not found: %v", p, err)
	}
	return p
}

// refPython is the reference environment's python ($LORAQA_REF_PYTHON or
// <repo>/.venv-ref/bin/python). When it is missing the test is skipped,
// unless LORAQA_REQUIRE_REF=1, where it fails.
func refPython(t testing.TB) string {
	t.Helper()
	py := os.Getenv("LORAQA_REF_PYTHON")
	if py == "" {
		py = filepath.Join(repoRoot(t), ".venv-ref", "bin", "python")
	}
	if _, err := exec.LookPath(py); err != nil {
		if os.Getenv("LORAQA_REQUIRE_REF") == "1" {
			t.Fatalf("reference python %s is required (LORAQA_REQUIRE_REF=1) but not usable: %v", py, err)
		}
		t.Skipf("reference python %s not found (set LORAQA_REF_PYTHON): %v", py, err)
	}
	return py
}

// sharedTokenizer loads ../shared/tokenizer.
func sharedTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "tokenizer")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared tokenizer not found at %s: %v", dir, err)
	}
	tok, err := LoadTokenizer(dir)
	require.NoError(t, err)
	return tok
}
