package serve

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// TestOpenAPIFuzz runs schemathesis (the reference environment's) against
// a live server with auth and an adapter root, over every route of the
// document it serves: its examples (an adapter loaded from the root, then
// unloaded through the inferred link), boundary values, random valid and
// invalid requests, and stateful sequences. Every check is on (server
// errors, status codes, content types, response schemas, invalid data
// rejected, valid data accepted except for v2 infer, unsupported methods,
// ignored auth); serve/testdata/schemathesis.toml says why and where not.
// LORAQA_FUZZ_EXAMPLES (default 20) bounds the examples per operation,
// LORAQA_FUZZ_SEED (default 1) seeds them.
func TestOpenAPIFuzz(t *testing.T) {
	py := testutil.RefPython(t)
	st := filepath.Join(filepath.Dir(py), "schemathesis")
	if _, err := os.Stat(st); err != nil {
		testutil.Missing(t, "schemathesis is not in the reference environment (%v): run make reference", err)
	}
	_, fix := tinyFixture(t)
	root := t.TempDir()
	// The document's example of POST /v1/adapters loads finance/v2.
	require.NoError(t, os.CopyFS(filepath.Join(root, "finance", "v2"), os.DirFS(fix)))
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.AuthTokens, o.Server.AdminTokens, o.Server.AdapterRoot = []string{userToken}, []string{adminToken}, root
	_, hs := startServer(t, o)

	examples, seed := envInt(t, "LORAQA_FUZZ_EXAMPLES", 20), envInt(t, "LORAQA_FUZZ_SEED", 1)
	cfg := filepath.Join(testutil.RepoRoot(t), "serve", "testdata", "schemathesis.toml")
	cmd := exec.Command(st, "--config-file", cfg, "run", hs.URL+pathOpenAPI,
		"--phases", "examples,coverage,fuzzing,stateful",
		"--max-examples", strconv.Itoa(examples), "--seed", strconv.Itoa(seed),
		"--header", "Authorization: Bearer "+adminToken, "--workers", "1",
		"--generation-database", "none", "--no-color", "--report-dir", t.TempDir())
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "schemathesis found failures:\n%s", out)
	t.Logf("schemathesis, %d examples per operation, seed %d:\n%s", examples, seed, lastLines(out, 30))
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s", name)
	return n
}

// lastLines is the end of a command's output.
func lastLines(b []byte, n int) string {
	end := len(b)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n < 0 {
				return string(b[i+1 : end])
			}
		}
	}
	return string(b)
}
