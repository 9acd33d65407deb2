package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/internal/atomicfile"
)

// predictorFlags are the flags that say which model to load.
type predictorFlags struct {
	adapter, model, device string
	dtype                  string
	maxSeq, stride         int
	merge, force           bool
	squad2                 squad2Flags
}

// newPredictorFlags is the FlagSet of a subcommand that loads a predictor
// (predict, eval), with the predictor flags registered.
func newPredictorFlags(name, args string) (*flag.FlagSet, *predictorFlags) {
	fs := newFlags(name, args)
	pf := &predictorFlags{}
	pf.register(fs)
	pf.squad2.register(fs)
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

// load loads the engine the flags say; anyUnanswerable (eval: the data has
// questions without an answer) turns SQuAD 2.0 on under
// --version-2-with-negative auto.
func (p *predictorFlags) load(ctx context.Context, anyUnanswerable bool) (*engine.Engine, error) {
	dev, dt, warned, err := resolveDevice(p.device, "--dtype", p.dtype, p.force, true)
	if err != nil {
		return nil, err
	}
	engine.Tune(logf)
	o := engine.DefaultOptions()
	o.Model, o.Device, o.DType, o.Merge, o.Hub, o.Logf = p.model, dev, dt, p.merge, hubOptions(), logfExcept(warned)
	if p.adapter != "" {
		o.Adapters = []engine.NamedAdapter{{Name: "adapter", Dir: p.adapter}}
	}
	o.Features.MaxSeqLength, o.Features.DocStride = p.maxSeq, p.stride
	o.MaxBatch, o.BatchWindow = 1, 0
	if err := p.squad2.apply(&o, anyUnanswerable); err != nil {
		return nil, err
	}
	return engine.Load(ctx, o)
}

func runPredict(ctx context.Context, args []string) error {
	fs, pf := newPredictorFlags("predict", "--adapter DIR --question Q (--context T | --context-file F | --passage T ... | --passages-file F) [--top-k K]")
	question := fs.String("question", "", "the question")
	contextText := fs.String("context", "", "the context text")
	contextFile := fs.String("context-file", "", "read the context from this file")
	var passages stringList
	fs.Var(&passages, "passage", "a passage to answer from (repeat it: the answer is the best span of all passages, with its passage index)")
	passagesFile := fs.String("passages-file", "", "read the passages from this file: a JSON array of strings")
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
	if *passagesFile != "" {
		more, err := readPassages(*passagesFile)
		if err != nil {
			return err
		}
		passages = append(passages, more...)
	}
	switch {
	case ctxText == "" && len(passages) == 0:
		return usagef("give --context, --context-file, --passage or --passages-file")
	case ctxText != "" && len(passages) > 0:
		return usagef("give a context (--context, --context-file) or passages (--passage, --passages-file), not both")
	case *topK < 1:
		return usagef("--top-k must be at least 1")
	}
	p, err := pf.load(ctx, false)
	if err != nil {
		return err
	}
	defer p.Close()
	var rs []engine.Result
	if len(passages) > 0 {
		var r engine.Result
		r, err = p.Answer(ctx, engine.Query{Question: *question, Passages: passages, TopK: *topK})
		rs = []engine.Result{r}
	} else {
		rs, err = p.Predict(ctx, []engine.Query{{Question: *question, Context: ctxText, TopK: *topK}})
	}
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
	fs, pf := newPredictorFlags("eval", "--adapter DIR --data F [--format F] [--json] [--output-dir DIR]")
	dataFile := fs.String("data", "", "QA file with contexts (hf-jsonl, squad, ...) or Q&A pairs (joined into one context)")
	format := fs.String("format", "auto", "auto|qa-text|csv|jsonl|squad|hf-jsonl")
	asJSON := fs.Bool("json", false, "print JSON only")
	outDir := fs.String("output-dir", "", "write the metrics printed (eval_results.json) and the predictions in the official formats (predictions.json: id → answer, \"\" for none; with SQuAD 2.0 null_odds.json) into this directory")
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
	p, err := pf.load(ctx, data.CountUnanswerable(ex) > 0)
	if err != nil {
		return err
	}
	defer p.Close()
	v2, threshold, err := p.Version2("")
	if err != nil {
		return err
	}
	qs := make([]engine.Query, len(ex))
	for i, e := range ex {
		qs[i] = engine.Query{ID: e.ID, Question: e.Question, Context: e.Context}
	}
	rs, err := p.Predict(ctx, qs)
	if err != nil {
		return err
	}
	texts := make(map[string]string, len(rs))
	preds := make([]data.Prediction, len(rs))
	var odds map[string]float64
	for i, r := range rs {
		a := r.Answers[0]
		texts[ex[i].ID] = a.Answer
		preds[i] = data.Prediction{ID: ex[i].ID, Candidate: data.Candidate{Text: a.Answer, Start: a.Start, End: a.End, Score: a.Score}, NullOdds: r.NullOdds}
		if v2 && r.NullOdds != nil {
			if odds == nil {
				odds = make(map[string]float64, len(rs))
			}
			odds[ex[i].ID] = *r.NullOdds
		}
	}
	var out any
	if v2 {
		m := evaluateV2(texts, odds, ex, threshold)
		out = m
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "%s: SQuAD 2.0 (null_score_diff_threshold %.6g, na_prob_thresh %.6g): exact %.2f, F1 %.2f over %d questions; answerable F1 %.2f (%d), unanswerable F1 %.2f (%d); best F1 %.2f at threshold %.6g\n",
				*dataFile, threshold, naProbThresh(threshold), m.Exact, m.F1, m.Total, m.HasAnsF1, m.HasAnsTotal, m.NoAnsF1, m.NoAnsTotal, m.BestF1, m.BestF1Thresh)
		}
	} else {
		m := data.EvaluateTexts(texts, ex)
		out = map[string]any{"exact_match": m.ExactMatch, "f1": m.F1, "n": m.N}
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "%s: exact match %.2f, F1 %.2f over %d questions\n", *dataFile, m.ExactMatch, m.F1, m.N)
		}
	}
	if *outDir != "" {
		if err := writeEvalFiles(*outDir, out, preds); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "wrote %s, %s and the predictions to %s\n", evalResultsFile, data.PredictionsFile, *outDir)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// readPassages reads a JSON array of passages (strings).
// evaluateV2 is the official SQuAD 2.0 evaluation of predictions made at
// null_score_diff_threshold threshold, with their null odds, run with
// --na-prob-thresh naProbThresh(threshold).
func evaluateV2(texts map[string]string, odds map[string]float64, ex []data.Example, threshold float64) data.MetricsV2 {
	return data.EvaluateTextsV2(texts, odds, ex, naProbThresh(threshold))
}

// naProbThresh is the script's --na-prob-thresh that scores the predictions
// as made: its default, 1, would blank an answer whose null odds lie between
// 1 and a larger threshold, which the model chose to give.
func naProbThresh(threshold float64) float64 {
	return math.Max(data.DefaultNAProbThresh, threshold)
}

func readPassages(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ps []string
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of strings (the passages): %w", path, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: no passages", path)
	}
	return ps, nil
}

// evalResultsFile is the file of `loraqa eval --output-dir` that holds the
// metrics it prints.
const evalResultsFile = "eval_results.json"

// writeEvalFiles writes the metrics m (eval_results.json) and the
// predictions (predictions.json, and null_odds.json when they have null
// odds) into dir, which it makes.
func writeEvalFiles(dir string, m any, preds []data.Prediction) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, evalResultsFile), m); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	if err := data.WritePredictionFiles(dir, preds); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	return nil
}
