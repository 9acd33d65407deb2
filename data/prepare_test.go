package data

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkPrepare is the acceptance check: preparing raw qa-text pairs gives a
// 90/10 split of the kept pairs and every record's answer sits at its
// answer_start, counted in code points.
func checkPrepare(t *testing.T, in string, pairs, trainN, testN int) {
	t.Helper()
	out := t.TempDir()
	opts := DefaultPrepareOptions()
	opts.Input, opts.OutDir = in, out
	rep, err := Prepare(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, pairs, rep.PairsRead)
	assert.Equal(t, pairs, rep.Kept)
	assert.Equal(t, trainN, rep.Train)
	assert.Equal(t, testN, rep.Test)
	assert.Equal(t, 1, rep.Contexts)
	assert.Equal(t, FormatQAText, rep.Format)

	train, test := readSplits(t, out)
	require.Len(t, train, trainN)
	require.Len(t, test, testN)
	seen := map[string]bool{}
	for _, ex := range append(train, test...) {
		require.Len(t, ex.Answers.Text, 1)
		rs := []rune(ex.Context)
		s := ex.Answers.AnswerStart[0]
		n := len([]rune(ex.Answers.Text[0]))
		require.LessOrEqual(t, s+n, len(rs))
		assert.Equal(t, ex.Answers.Text[0], string(rs[s:s+n]), "record %s", ex.ID)
		assert.False(t, seen[ex.ID])
		seen[ex.ID] = true
	}
	// all records share the one joined context
	assert.Equal(t, 1, CountContexts(append(train, test...)))

	var onDisk map[string]any
	b, err := os.ReadFile(filepath.Join(out, ReportFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &onDisk))
	assert.EqualValues(t, pairs, onDisk["pairs_read"])
	assert.EqualValues(t, trainN, onDisk["train"])
	assert.EqualValues(t, testN, onDisk["test"])
	assert.Equal(t, map[string]any{}, onDisk["skipped"])

	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{TrainFile, TestFile, ReportFile}, names, "no temporary files left")

	// same seed, same files
	out2 := t.TempDir()
	opts.OutDir = out2
	_, err = Prepare(context.Background(), opts)
	require.NoError(t, err)
	for _, f := range []string{TrainFile, TestFile} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(out2, f))
		assert.Equal(t, a, b, f)
	}
}

// TestPrepareSample: checkPrepare on examples/sample-qa.txt (280 pairs).
// (TAT-QA: TestRealDataPrepareTATQA.)
func TestPrepareSample(t *testing.T) {
	checkPrepare(t, sampleQA(t), 280, 252, 28)
}

// readSplits reads the train and test files that Prepare wrote to dir.
func readSplits(t *testing.T, dir string) (train, test []Example) {
	t.Helper()
	train, err := ReadExamplesJSONL(filepath.Join(dir, TrainFile))
	require.NoError(t, err)
	test, err = ReadExamplesJSONL(filepath.Join(dir, TestFile))
	require.NoError(t, err)
	return train, test
}

// prepareHalves writes doc to a file named name, prepares it with half the
// kept questions held out for test, into a directory Prepare must create,
// and returns the report and the examples of train, then of test.
func prepareHalves(t *testing.T, name, doc string) (*Report, []Example) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(in, []byte(doc), 0o644))
	opts := DefaultPrepareOptions()
	opts.Input, opts.OutDir, opts.TestFraction = in, filepath.Join(dir, "out"), 0.5
	rep, err := Prepare(context.Background(), opts)
	require.NoError(t, err)
	train, test := readSplits(t, opts.OutDir)
	return rep, append(train, test...)
}

func TestPrepareReportsSkips(t *testing.T) {
	rep, all := prepareHalves(t, "in.txt", "Q: a\nA: 1\n\nQ: a\nA: 1\n\nQ: b\nA: 1\n\nQ: c\nA:\n")
	assert.Equal(t, 4, rep.PairsRead)
	assert.Equal(t, 2, rep.Kept)
	assert.Equal(t, map[string]int{SkipDuplicate: 1, SkipEmptyAnswer: 1}, rep.Skipped)
	assert.Equal(t, 1, rep.Train)
	assert.Equal(t, 1, rep.Test)
	assert.Equal(t, "1 1", all[0].Context)
	// the two equal answers point at their own occurrences
	assert.ElementsMatch(t, []int{0, 2}, []int{all[0].Answers.AnswerStart[0], all[1].Answers.AnswerStart[0]})
}

func TestPrepareErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, []byte("Q: only a question\n"), 0o644))
	two := filepath.Join(dir, "two.txt")
	require.NoError(t, os.WriteFile(two, []byte("Q: a\nA: 1\n\nQ: b\nA: 2\n"), 0o644))
	tests := []struct {
		name string
		opts PrepareOptions
		want string
	}{
		{"no input", PrepareOptions{OutDir: dir}, "input and output directory are required"},
		{"missing file", PrepareOptions{Input: filepath.Join(dir, "nope.txt"), OutDir: dir}, "nope.txt"},
		{"nothing usable", PrepareOptions{Input: empty, OutDir: dir, TestFraction: 0.1}, "no usable question/answer records"},
		{"bad fraction", PrepareOptions{Input: two, OutDir: dir, TestFraction: 1}, "not in [0, 1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), tc.opts)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Prepare(ctx, PrepareOptions{Input: two, OutDir: filepath.Join(dir, "c"), TestFraction: 0.5})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.jsonl")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	err := writeFileAtomic(p, func(w io.Writer) error { return assert.AnError })
	assert.ErrorIs(t, err, assert.AnError)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b), "a failed write keeps the old file")
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "and leaves no temporary file")
}
