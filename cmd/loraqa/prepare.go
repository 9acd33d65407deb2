package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/loraqa/loraqa/data"
)

func runPrepare(ctx context.Context, args []string) error {
	fs := newFlags("prepare", "--input F [--format auto] --out DIR [--test-fraction 0.1] [--seed 42]")
	o := data.DefaultPrepareOptions()
	fs.StringVar(&o.Input, "input", "", "input file")
	fs.StringVar(&o.Format, "format", "auto", "auto|qa-text|csv|jsonl|squad|hf-jsonl")
	fs.StringVar(&o.OutDir, "out", "", "output directory")
	fs.Float64Var(&o.TestFraction, "test-fraction", o.TestFraction, "fraction of examples in the test split")
	seed := fs.Uint64("seed", o.Seed, "split seed")
	fs.StringVar(&o.Separator, "separator", " ", "joins the answers into the shared context")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Input == "" || o.OutDir == "" {
		return usagef("--input and --out are required")
	}
	o.Seed = *seed
	rep, err := data.Prepare(ctx, o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func runFeatures(ctx context.Context, args []string) error {
	fs := newFlags("features", "--data F --model DIR [--max-seq-length 384] [--doc-stride 128] [--mode windows|truncate] --out F.jsonl")
	dataFile := fs.String("data", "", "QA file (hf-jsonl, squad, Q&A pairs, ...)")
	format := fs.String("format", "auto", "input format")
	model := fs.String("model", "", "model directory or hub id (for its tokenizer)")
	out := fs.String("out", "", "output JSONL file")
	fo := data.DefaultFeatureOptions()
	fs.IntVar(&fo.MaxSeqLength, "max-seq-length", fo.MaxSeqLength, "tokens per window")
	fs.IntVar(&fo.DocStride, "doc-stride", fo.DocStride, "tokens of overlap between windows")
	mode := fs.String("mode", string(fo.Mode), "windows or truncate")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataFile == "" || *model == "" || *out == "" {
		return usagef("--data, --model and --out are required")
	}
	fo.Mode = data.Mode(*mode)
	dir, err := resolveModel(ctx, *model)
	if err != nil {
		return err
	}
	tok, err := data.LoadTokenizer(dir)
	if err != nil {
		return err
	}
	rr, err := data.ReadFile(*dataFile, *format)
	if err != nil {
		return err
	}
	feats, rep, err := data.Featurize(tok, data.BuildDataset(rr, data.BuildOptions{}), fo)
	if err != nil {
		return err
	}
	if err := data.WriteFeaturesJSONL(*out, feats); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
