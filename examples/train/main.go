// Command train shows loraqa's whole training pipeline used as a Go library
// by another module: it trains a LoRA adapter in-process (train.Run) on the
// shipped sample filings, writes the adapter directory, then loads it
// with its base (package engine) and answers a question with it.
//
//	make demo      # fetches (or makes) a base model and trains out/demo/adapter
//	make example   # builds this module (GOWORK=off) and runs it on the demo's base
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/train"
)

func main() {
	base := flag.String("base", "", "base QA model directory or hub id (required)")
	input := flag.String("data", "examples/sample-filings.json", "training data (SQuAD JSON, JSONL, Q:/A: pairs)")
	out := flag.String("out", "out/example", "where the run's checkpoints and the adapter go")
	steps := flag.Int64("steps", 8, "optimizer steps")
	flag.Parse()
	if *base == "" {
		fmt.Fprintln(os.Stderr, "train: --base is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *base, *input, *out, *steps); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, base, input, out string, steps int64) error {
	rr, err := data.ReadFile(input, "auto")
	if err != nil {
		return err
	}
	trainEx, testEx, err := data.Split(data.BuildDataset(rr, data.BuildOptions{}), 0.1, 42)
	if err != nil {
		return err
	}
	features := data.DefaultFeatureOptions()
	features.MaxSeqLength, features.DocStride = 128, 32
	lora := peft.DefaultConfig()
	lora.BaseModel = base
	opts := train.DefaultOptions()
	opts.MaxSteps, opts.LR, opts.LogEvery, opts.OutputDir = steps, 1e-3, 2, out+"/run"
	adapter := out + "/adapter"
	st, err := train.Run(ctx, train.Job{
		Base: base, Train: trainEx, Test: testEx, Features: features, LoRA: lora,
		Options: opts, Out: adapter, Observer: train.ProgressBar(os.Stderr),
		Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) },
	})
	if err != nil {
		return err
	}
	fmt.Printf("trained %d steps; best F1 %.2f; adapter in %s\n", st.GlobalStep, st.BestF1, adapter)

	o := engine.DefaultOptions()
	o.Adapters = []engine.NamedAdapter{{Name: "example", Dir: adapter}}
	e, err := engine.Load(ctx, o)
	if err != nil {
		return err
	}
	defer e.Close()
	q := testEx[0]
	res, err := e.Answer(ctx, engine.Query{Question: q.Question, Context: q.Context})
	if err != nil {
		return err
	}
	fmt.Printf("Q: %s\nA: %s (score %.3f)\n", q.Question, res.Answers[0].Answer, res.Answers[0].Score)
	return nil
}
