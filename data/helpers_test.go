package data

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

func repoRoot(t testing.TB) string { return testutil.RepoRoot(t) }

// sharedDir is ../shared beside the repository, or $LORAQA_SHARED; the test
// is skipped when it is absent.
func sharedDir(t testing.TB) string { return testutil.Shared(t) }

// sharedFile is a file under sharedDir; the test is skipped when it is absent.
func sharedFile(t testing.TB, rel string) string {
	return testutil.Shared(t, filepath.FromSlash(rel))
}

// refPython is the reference environment's python (skipped when missing,
// unless LORAQA_REQUIRE_REF=1).
func refPython(t testing.TB) string { return testutil.RefPython(t) }

// sharedTokenizer loads ../shared/tokenizer.
func sharedTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := LoadTokenizer(testutil.Shared(t, "tokenizer"))
	require.NoError(t, err)
	return tok
}
