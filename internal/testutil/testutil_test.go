package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRequired: missing material fails a test under CI=true or
// LORAQA_REQUIRE_REF=1, and only then.
func TestRequired(t *testing.T) {
	for _, c := range []struct {
		ci, ref string
		want    bool
	}{
		{"", "", false}, {"true", "", true}, {"", "1", true}, {"false", "0", false}, {"1", "", false},
	} {
		t.Setenv("CI", c.ci)
		t.Setenv("LORAQA_REQUIRE_REF", c.ref)
		assert.Equal(t, c.want, Required(), "CI=%q LORAQA_REQUIRE_REF=%q", c.ci, c.ref)
	}
}

// TestRepoRoot finds the directory with go.mod above this package.
func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	wd, _ := os.Getwd()
	assert.Equal(t, filepath.Join(root, "internal", "testutil"), wd)
}
