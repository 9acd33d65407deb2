// Command answer shows loraqa used as a Go library by another module: it
// loads a LoRA adapter with its base model (package engine), answers a
// handful of questions over a handful of short documents in one batch, and
// prints the answers.
//
//	make demo      # trains out/demo/adapter
//	make example   # builds this module (GOWORK=off) and runs it on that adapter
//
// or, from the repository root after `make setup`:
//
//	(cd examples && GOWORK=off go build -o ../bin/answer ./answer) && bin/answer --adapter out/demo/adapter
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/torch"
)

// documents are short texts of the kind the demo adapter was trained on
// (examples/sample-filings.json), with questions about each.
var documents = []struct {
	text      string
	questions []string
}{
	{
		"Fairhaven Optics reported total revenue of $2,381.4 million for fiscal 2022, while net income reached $118.9 million. The company is headquartered in Rotterdam.",
		[]string{"What was Fairhaven Optics's total revenue?", "Where is Fairhaven Optics headquartered?"},
	},
	{
		"Corvid Marine Systems employs 4,210 full-time employees. Its largest business segment is offshore services, and its financial statements are audited by Hale Brennan.",
		[]string{"How many people does Corvid Marine Systems employ?", "Which firm audits Corvid Marine Systems's financial statements?"},
	},
	{
		"In 2021 Quillon Foods declared a quarterly dividend of $0.42 per share and carried long-term debt of $312.5 million at year end.",
		[]string{"What quarterly dividend did Quillon Foods declare?", "How much long-term debt did Quillon Foods carry at year end?"},
	},
}

func main() {
	adapter := flag.String("adapter", "out/demo/adapter", "adapter directory (from `make demo` or `loraqa train`)")
	model := flag.String("model", "", "base model directory or hub id (default: the adapter's base_model_name_or_path)")
	device := flag.String("device", "auto", "auto, cpu, cuda or cuda:N")
	dtype := flag.String("dtype", "fp32", "dtype of the frozen base: fp32, bf16, fp16 (CUDA) or int8 (CPU)")
	topK := flag.Int("top-k", 1, "answers per question")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *adapter, *model, *device, *dtype, *topK); err != nil {
		fmt.Fprintln(os.Stderr, "answer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, adapter, model, device, dtype string, topK int) error {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return err
	}
	dt, err := torch.ParseDType(dtype, dev)
	if err != nil {
		return err
	}
	o := engine.DefaultOptions()
	o.Model, o.Device, o.DType = model, dev, dt
	o.Adapters = []engine.NamedAdapter{{Name: "demo", Dir: adapter}}
	e, err := engine.Load(ctx, o) // the windows default to those the adapter was trained with
	if err != nil {
		return err
	}
	defer e.Close()

	var qs []engine.Query
	for _, d := range documents {
		for _, q := range d.questions {
			qs = append(qs, engine.Query{Question: q, Context: d.text, TopK: topK})
		}
	}
	res, err := e.AnswerBatch(ctx, qs)
	if err != nil {
		return err
	}
	w, err := e.Windows("")
	if err != nil {
		return err
	}
	fmt.Printf("adapter %s on %s (windows of %d tokens, stride %d)\n\n", adapter, e.Device(), w.MaxSeqLength, w.DocStride)
	for i, q := range qs {
		fmt.Printf("Q: %s\n", q.Question)
		for _, a := range res[i].Answers {
			fmt.Printf("A: %s (score %.3f)\n", a.Answer, a.Score)
		}
		fmt.Println()
	}
	return nil
}
