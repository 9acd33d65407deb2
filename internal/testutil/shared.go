// Package testutil finds the shared test material (../shared beside the repo)
// and the Python reference environment for tests.
package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Shared returns ../shared (or $LORAQA_SHARED) joined with elem, skipping the
// test when it is absent.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	base := os.Getenv("LORAQA_SHARED")
	if base == "" {
		base = filepath.Join(RepoRoot(t), "..", "shared")
	}
	p := filepath.Join(append([]string{base}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test material %s is absent (set LORAQA_SHARED)", p)
	}
	return p
}

// SharedIfPresent is Shared for material a test uses when it is there and
// does without otherwise: it reports whether the path exists instead of skipping.
func SharedIfPresent(t testing.TB, elem ...string) (string, bool) {
	t.Helper()
	base := os.Getenv("LORAQA_SHARED")
	if base == "" {
		base = filepath.Join(RepoRoot(t), "..", "shared")
	}
	p := filepath.Join(append([]string{base}, elem...)...)
	_, err := os.Stat(p)
	return p, err == nil
}

// RefPython returns the reference environment's python ($LORAQA_REF_PYTHON or
// <repo>/.venv-ref/bin/python). Without one the test is skipped, unless
// LORAQA_REQUIRE_REF=1 (CI), where it fails.
func RefPython(t testing.TB) string {
	t.Helper()
	py := os.Getenv("LORAQA_REF_PYTHON")
	if py == "" {
		py = filepath.Join(RepoRoot(t), ".venv-ref", "bin", "python")
	}
	if _, err := exec.LookPath(py); err != nil {
		if os.Getenv("LORAQA_REQUIRE_REF") == "1" {
			t.Fatalf("reference python %s not found (run make reference)", py)
		}
		t.Skipf("reference python %s not found (run make reference)", py)
	}
	return py
}

// RefScript is the path of a script under scripts/ref.
func RefScript(t testing.TB, name string) string {
	return filepath.Join(RepoRoot(t), "scripts", "ref", name)
}

// RunRef runs scripts/ref/<script> in the reference environment with req as
// JSON on stdin and decodes its stdout into out.
func RunRef(t testing.TB, script string, req, out any) {
	t.Helper()
	py := RefPython(t)
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, RefScript(t, script))
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(o, out); err != nil {
		t.Fatalf("%s printed %q: %v", script, o, err)
	}
}

// PEFTResult is what scripts/ref/peft_check.py reports.
type PEFTResult struct {
	MaxAbsDiff   float64  `json:"max_abs_diff"`
	Architecture string   `json:"architecture"`
	Warnings     []string `json:"warnings"`
}

// PEFTCheck runs scripts/ref/peft_check.py (HF PEFT / transformers in the
// reference environment) on req and returns the largest logit difference and
// the architecture transformers loaded. A warning while loading fails the test.
func PEFTCheck(t testing.TB, req map[string]any) (float64, string) {
	t.Helper()
	var res PEFTResult
	RunRef(t, "peft_check.py", req, &res)
	if len(res.Warnings) > 0 {
		t.Errorf("the reference warned while loading: %q", res.Warnings)
	}
	return res.MaxAbsDiff, res.Architecture
}
