// Package testutil finds what tests read: the committed samples (testdata/,
// examples/), the material `make reference` generates (the tiny DistilBERT
// fixture and a tokenizer, in .build/testdata or $LORAQA_TESTDATA), the Python
// reference environment, the loraqa binary, and — for `make test-data` only —
// the real datasets in $LORAQA_DATA.
//
// Missing generated material or a missing reference environment skips a test
// with a message saying to run `make reference`, except under CI=true or
// LORAQA_REQUIRE_REF=1 (make test sets it), where the test fails.
package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Required reports whether missing test material fails a test rather than
// skipping it: under CI=true or LORAQA_REQUIRE_REF=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("LORAQA_REQUIRE_REF") == "1"
}

// Missing fails the test when Required, and skips it otherwise, with the
// message and what to run.
func Missing(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if Required() {
		t.Fatalf("%s (CI=true or LORAQA_REQUIRE_REF=1: missing material fails the test)", msg)
	}
	t.Skip(msg)
}

// GeneratedDir is where `make reference` writes the generated test material:
// $LORAQA_TESTDATA, or .build/testdata in the repository.
func GeneratedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("LORAQA_TESTDATA"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(t), ".build", "testdata")
}

// Generated is a path under GeneratedDir. When it is absent the test is
// skipped (or fails, see Required) with a message to run make reference.
func Generated(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{GeneratedDir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "generated test material %s is absent: run `make reference` (scripts/make-testdata.sh generates it)", p)
	}
	return p
}

// Fixture is a generated fixture directory in the layout verify reads (base/,
// adapter/, expected.json, ...): "tiny-distilbert-qa", made by
// scripts/ref/make_fixtures.py.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	dir := Generated(t, name)
	Generated(t, name, "base", "config.json")
	return dir
}

// Tokenizer is the generated tokenizer directory: the bert-base-uncased
// vocab.txt and HF's tokenizer.json for it, no tokenizer_config.json.
func Tokenizer(t testing.TB) string {
	t.Helper()
	return filepath.Dir(Generated(t, "tokenizer", "tokenizer.json"))
}

// Vocab is the bert-base-uncased vocab.txt of the generated tokenizer.
func Vocab(t testing.TB) string {
	t.Helper()
	return Generated(t, "tokenizer", "vocab.txt")
}

// Committed is a path under the repository's testdata/; it is committed, so
// its absence fails the test.
func Committed(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{RepoRoot(t), "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("committed test material: %v", err)
	}
	return p
}

// SampleQA is examples/sample-qa.txt: 280 Q&A pairs in the qa-text format
// (scripts/gensample), the data the training and serving tests use.
func SampleQA(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "examples", "sample-qa.txt")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("committed sample: %v", err)
	}
	return p
}

// RealData is a file of the real datasets in $LORAQA_DATA (a relative path is
// taken from the repository root), for the tests behind the realdata build tag
// (make test-data). An unset LORAQA_DATA or a missing file fails the test.
func RealData(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("LORAQA_DATA")
	if dir == "" {
		t.Fatalf("LORAQA_DATA is not set: the realdata tests read %s from it (make test-data LORAQA_DATA=DIR)", name)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(RepoRoot(t), dir)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("real dataset file: %v (LORAQA_DATA=%s)", err, os.Getenv("LORAQA_DATA"))
	}
	return p
}

// LoraqaBin is the loraqa binary for tests that run it: $LORAQA_BIN (make test
// passes bin/loraqa), else one built from this checkout into a temporary
// directory. Without a go command to build it, the test is skipped (or fails,
// see Required); a failed build fails the test.
func LoraqaBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("LORAQA_BIN"); bin != "" {
		if !filepath.IsAbs(bin) {
			bin = filepath.Join(RepoRoot(t), bin)
		}
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("LORAQA_BIN: %v", err)
		}
		return bin
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(build.Default.GOROOT, "bin", "go")
		if _, err := os.Stat(goCmd); err != nil {
			Missing(t, "no go command to build loraqa and LORAQA_BIN is not set: run `make build` and set LORAQA_BIN=bin/loraqa")
		}
	}
	bin := filepath.Join(t.TempDir(), "loraqa")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/loraqa")
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/loraqa: %v\n%s", err, out)
	}
	return bin
}

// RefPython returns the reference environment's python ($LORAQA_REF_PYTHON or
// <repo>/.venv-ref/bin/python). Without one the test is skipped, or fails
// under CI=true or LORAQA_REQUIRE_REF=1.
func RefPython(t testing.TB) string {
	t.Helper()
	py := os.Getenv("LORAQA_REF_PYTHON")
	if py == "" {
		py = filepath.Join(RepoRoot(t), ".venv-ref", "bin", "python")
	}
	if _, err := exec.LookPath(py); err != nil {
		Missing(t, "reference python %s not found (run make reference)", py)
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
	DropoutCalls int      `json:"dropout_calls"` // with dropout_seed: the counter dropout's calls
}

// PEFTRun runs scripts/ref/peft_check.py (HF PEFT / transformers in the
// reference environment) on req. A warning while loading fails the test.
func PEFTRun(t testing.TB, req map[string]any) PEFTResult {
	t.Helper()
	var res PEFTResult
	RunRef(t, "peft_check.py", req, &res)
	if len(res.Warnings) > 0 {
		t.Errorf("the reference warned while loading: %q", res.Warnings)
	}
	return res
}

// PEFTCheck is PEFTRun's largest logit difference and the architecture
// transformers loaded.
func PEFTCheck(t testing.TB, req map[string]any) (float64, string) {
	t.Helper()
	res := PEFTRun(t, req)
	return res.MaxAbsDiff, res.Architecture
}

// TinyBERT is the committed tiny BERT fixture's base (it takes 64
// positions) and a copy of its adapter in a temporary directory, with a
// WordPiece vocab.txt beside it (the fixture has no tokenizer): the special
// tokens, words, then single letters and digits with their "##"
// continuations; small enough for the fixture's vocab_size of 1000.
func TinyBERT(t testing.TB, words ...string) (base, adapter string) {
	t.Helper()
	fx := filepath.Join(RepoRoot(t), "testdata", "tiny-bert-qa")
	adapter = t.TempDir()
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(fx, "adapter", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(adapter, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	toks := append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, words...)
	for _, r := range []struct{ from, to rune }{{'a', 'z'}, {'0', '9'}} {
		for c := r.from; c <= r.to; c++ {
			toks = append(toks, string(c), "##"+string(c))
		}
	}
	if err := os.WriteFile(filepath.Join(adapter, "vocab.txt"), []byte(strings.Join(toks, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(fx, "base"), adapter
}

// SQuAD2Sample writes a small SQuAD 2.0 file into a temporary directory and
// returns its path: n short paragraphs (about 30 words of bert-base-uncased
// each), each with two answerable questions and one that its context does
// not answer (is_impossible, no answers, a plausible answer as SQuAD 2.0
// gives one), ids "p<i>-revenue", "p<i>-city" and "p<i>-ceo".
func SQuAD2Sample(t testing.TB, n int) string {
	t.Helper()
	names := []string{"acme", "bolt", "crest", "delta", "ember", "fjord", "gale", "harbor", "iris", "juniper", "kestrel", "lumen"}
	cities := []string{"paris", "oslo", "lima", "cairo", "quito", "rome", "bern", "kyiv"}
	type answer struct {
		Text  string `json:"text"`
		Start int    `json:"answer_start"`
	}
	type qa struct {
		ID         string   `json:"id"`
		Question   string   `json:"question"`
		Answers    []answer `json:"answers"`
		Impossible bool     `json:"is_impossible"`
		Plausible  []answer `json:"plausible_answers,omitempty"`
	}
	type paragraph struct {
		Context string `json:"context"`
		QAs     []qa   `json:"qas"`
	}
	var paras []paragraph
	for i := range n {
		name := names[i%len(names)]
		if i >= len(names) {
			name += fmt.Sprint(i / len(names))
		}
		city := cities[(i*3)%len(cities)]
		revenue := fmt.Sprintf("$%d.%d million", 10+(i*37)%90, i%10)
		ctx := fmt.Sprintf("the company %s was founded in %s. the revenue of %s was %s in 2019. it sold a year of revenue.", name, city, name, revenue)
		at := func(s string) []answer { return []answer{{Text: s, Start: strings.Index(ctx, s)}} }
		paras = append(paras, paragraph{Context: ctx, QAs: []qa{
			{ID: fmt.Sprintf("p%d-revenue", i), Question: "what was the revenue of " + name + "?", Answers: at(revenue)},
			{ID: fmt.Sprintf("p%d-city", i), Question: "where was " + name + " founded?", Answers: at(city)},
			{ID: fmt.Sprintf("p%d-ceo", i), Question: "who is the ceo of " + name + "?", Answers: []answer{}, Impossible: true, Plausible: at(name)},
		}})
	}
	doc := map[string]any{"version": "v2.0", "data": []any{map[string]any{"title": "sample", "paragraphs": paras}}}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "squad2-sample.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
