package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/torch"
)

func init() {
	register("predict", "answer a question over a context with an adapter (or a QA model)", runPredict)
	register("eval", "exact match and F1 of an adapter on a QA file", runEval)
}

// predictorFlags are the flags that say which model to load.
type predictorFlags struct {
	adapter, model, device string
	dtype                  string
	maxSeq, stride         int
	merge, force           bool
}

// newPredictorFlags is the FlagSet of a subcommand that loads a predictor
// (predict, eval), with the predictor flags registered.
func newPredictorFlags(name, args string) (*flag.FlagSet, *predictorFlags) {
	fs := newFlags(name, args)
	pf := &predictorFlags{}
	pf.register(fs)
	return fs, pf
}

func (p *predictorFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&p.adapter, "adapter", "", "adapter directory (PEFT files); its base_model_name_or_path is the base")
	fs.StringVar(&p.model, "model", "", "base model directory or hub id (overrides the adapter's; alone: a QA model)")
	fs.StringVar(&p.device, "device", "auto", "auto, cpu, cuda or cuda:N")
	fs.StringVar(&p.dtype, "dtype", "fp32", "dtype of the frozen base: fp32, bf16, fp16 (CUDA), int8 (CPU: its linears quantized) or auto (the fastest that holds the numbers here); the adapter stays fp32")
	fs.IntVar(&p.maxSeq, "max-seq-length", 0, windowsFlagDoc)
	fs.IntVar(&p.stride, "doc-stride", 0, strideFlagDoc)
	fs.BoolVar(&p.merge, "merge", false, "fold the adapter into the weights before running")
	fs.BoolVar(&p.force, "force", false, forceFlagDoc)
}

// windowsFlagDoc and strideFlagDoc describe --max-seq-length and
// --doc-stride of predict, eval and serve.
const (
	windowsFlagDoc = "tokens per window (0: the adapter's training windows, else 384; capped by the model's positions)"
	strideFlagDoc  = "tokens of overlap between windows (0: the adapter's, else min(max-seq-length/2, 128))"
)

func (p *predictorFlags) load(ctx context.Context) (*engine.Engine, error) {
	dev, err := torch.ParseDevice(p.device)
	if err != nil {
		return nil, err
	}
	dt, err := resolveDType("--dtype", p.dtype, dev, p.force)
	if err != nil {
		return nil, err
	}
	engine.Tune(false, logf)
	o := engine.DefaultOptions()
	o.Model, o.Device, o.DType, o.Merge, o.Hub, o.Logf = p.model, dev, dt, p.merge, hubOptions(), logf
	if p.adapter != "" {
		o.Adapters = []engine.NamedAdapter{{Name: "adapter", Dir: p.adapter}}
	}
	o.Features.MaxSeqLength, o.Features.DocStride = p.maxSeq, p.stride
	o.MaxBatch, o.BatchWindow = 1, 0
	return engine.Load(ctx, o)
}

func runPredict(ctx context.Context, args []string) error {
	fs, pf := newPredictorFlags("predict", "--adapter DIR --question Q (--context T | --context-file F) [--top-k K]")
	question := fs.String("question", "", "the question")
	contextText := fs.String("context", "", "the context text")
	contextFile := fs.String("context-file", "", "read the context from this file")
	topK := fs.Int("top-k", 1, "print the K best answers as a list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *question == "" {
		return usagef("--question is required")
	}
	ctxText := *contextText
	if *contextFile != "" {
		b, err := os.ReadFile(*contextFile)
		if err != nil {
			return err
		}
		ctxText = string(b)
	}
	if ctxText == "" {
		return usagef("give --context or --context-file")
	}
	if *topK < 1 {
		return usagef("--top-k must be at least 1")
	}
	p, err := pf.load(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	rs, err := p.Predict(ctx, []engine.Query{{Question: *question, Context: ctxText, TopK: *topK}})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	a := rs[0].Answers
	if *topK == 1 {
		return enc.Encode(a[0])
	}
	return enc.Encode(a)
}

func runEval(ctx context.Context, args []string) error {
	fs, pf := newPredictorFlags("eval", "--adapter DIR --data F [--format F] [--json]")
	dataFile := fs.String("data", "", "QA file with contexts (hf-jsonl, squad, ...) or Q&A pairs (joined into one context)")
	format := fs.String("format", "auto", "auto|qa-text|csv|jsonl|squad|hf-jsonl")
	asJSON := fs.Bool("json", false, "print JSON only")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataFile == "" {
		return usagef("--data is required")
	}
	rr, err := data.ReadFile(*dataFile, *format)
	if err != nil {
		return err
	}
	ex := data.BuildDataset(rr, data.BuildOptions{})
	p, err := pf.load(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	qs := make([]engine.Query, len(ex))
	for i, e := range ex {
		qs[i] = engine.Query{ID: e.ID, Question: e.Question, Context: e.Context}
	}
	rs, err := p.Predict(ctx, qs)
	if err != nil {
		return err
	}
	texts := make(map[string]string, len(rs))
	for i, r := range rs {
		texts[ex[i].ID] = r.Answers[0].Answer
	}
	m := data.EvaluateTexts(texts, ex)
	out := map[string]any{"exact_match": m.ExactMatch, "f1": m.F1, "n": m.N}
	if !*asJSON {
		fmt.Fprintf(os.Stderr, "%s: exact match %.2f, F1 %.2f over %d questions\n", *dataFile, m.ExactMatch, m.F1, m.N)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
