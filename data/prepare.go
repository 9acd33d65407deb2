package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Names of the files Prepare writes in its output directory.
const (
	TrainFile  = "train.jsonl"
	TestFile   = "test.jsonl"
	ReportFile = "report.json"
)

// PrepareOptions configures Prepare.
type PrepareOptions struct {
	Input        string
	Format       string // see Formats; "" means auto
	OutDir       string
	TestFraction float64
	Seed         uint64
	Separator    string // joins answers into the shared context; "" means " "
}

// DefaultPrepareOptions has the defaults of `loraqa prepare`.
func DefaultPrepareOptions() PrepareOptions {
	return PrepareOptions{Format: FormatAuto, TestFraction: DefaultTestFraction, Seed: DefaultSeed, Separator: DefaultSeparator}
}

// Report is what Prepare writes to report.json.
type Report struct {
	Input     string `json:"input"`
	Format    string `json:"format"`
	PairsRead int    `json:"pairs_read"`
	Kept      int    `json:"kept"`
	// Unanswerable counts kept questions without an answer (SQuAD 2.0).
	Unanswerable   int            `json:"unanswerable,omitempty"`
	Skipped        map[string]int `json:"skipped"`
	DroppedAnswers map[string]int `json:"dropped_answers,omitempty"`
	Contexts       int            `json:"contexts"`
	Separator      string         `json:"separator"`
	TestFraction   float64        `json:"test_fraction"`
	Seed           uint64         `json:"seed"`
	Train          int            `json:"train"`
	Test           int            `json:"test"`
}

// Prepare reads opts.Input, builds the dataset, splits it and writes
// train.jsonl and test.jsonl (hf-jsonl records) and report.json to opts.OutDir.
func Prepare(ctx context.Context, opts PrepareOptions) (*Report, error) {
	if opts.Input == "" || opts.OutDir == "" {
		return nil, fmt.Errorf("prepare: input and output directory are required")
	}
	if opts.Separator == "" {
		opts.Separator = DefaultSeparator
	}
	read, err := ReadFile(opts.Input, opts.Format)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	rep := &Report{
		Input: opts.Input, Format: read.Format, PairsRead: read.Records, Kept: read.Kept(),
		Unanswerable: CountUnanswerable(read.Examples),
		Skipped:      read.Skipped, DroppedAnswers: read.DroppedAnswers,
		Separator: opts.Separator, TestFraction: opts.TestFraction, Seed: opts.Seed,
	}
	if rep.Skipped == nil {
		rep.Skipped = map[string]int{}
	}
	if read.Kept() == 0 {
		return rep, fmt.Errorf("prepare: %s: no usable question/answer records (skipped: %v)", opts.Input, read.Skipped)
	}
	examples := BuildDataset(read, BuildOptions{Separator: opts.Separator})
	rep.Contexts = CountContexts(examples)
	train, test, err := Split(examples, opts.TestFraction, opts.Seed)
	if err != nil {
		return rep, fmt.Errorf("prepare: %s: %w", opts.Input, err)
	}
	rep.Train, rep.Test = len(train), len(test)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("prepare: %w", err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return rep, fmt.Errorf("prepare: %w", err)
	}
	if err := WriteExamplesJSONL(filepath.Join(opts.OutDir, TrainFile), train); err != nil {
		return rep, fmt.Errorf("prepare: %w", err)
	}
	if err := WriteExamplesJSONL(filepath.Join(opts.OutDir, TestFile), test); err != nil {
		return rep, fmt.Errorf("prepare: %w", err)
	}
	if err := WriteJSONFile(filepath.Join(opts.OutDir, ReportFile), rep); err != nil {
		return rep, fmt.Errorf("prepare: %w", err)
	}
	return rep, nil
}
