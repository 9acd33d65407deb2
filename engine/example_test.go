package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/engine"
)

// Load a base model with an adapter and answer a question. The base and
// adapter here are the repository's tiny test fixture (a 2-layer BERT of 64
// positions), which has no tokenizer: a small WordPiece vocab.txt is
// written beside a copy of the adapter (an adapter made by `loraqa train`
// carries its base's tokenizer files).
func Example() {
	dir, err := os.MkdirTemp("", "loraqa-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	adapter, err := tinyAdapter(dir)
	if err != nil {
		log.Fatal(err)
	}

	o := engine.DefaultOptions()
	o.Model = filepath.Join("..", "testdata", "tiny-bert-qa", "base") // "": the adapter's base_model_name_or_path
	o.Adapters = []engine.NamedAdapter{{Name: "demo", Dir: adapter}}
	o.Device = gotch.CPU // the zero Device: CUDA when available; o.DType = gotch.BFloat16 for a bfloat16 base
	ctx := context.Background()
	e, err := engine.Load(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	w, _ := e.Windows("demo")
	fmt.Printf("windows of %d tokens, stride %d\n", w.MaxSeqLength, w.DocStride)
	res, err := e.Answer(ctx, engine.Query{
		Question: "who works at acme?",
		Context:  "alice works at acme. bob lives in paris.",
		Adapter:  "demo", // "": the default (the first adapter)
		TopK:     2,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range res.Answers {
		fmt.Printf("%q at [%d, %d)\n", a.Answer, a.Start, a.End)
	}
	// The fixture is a tiny test model, not a trained one: its answer is a
	// span of the context, not the right one.

	// Output:
	// windows of 64 tokens, stride 32
	// "bob lives in paris" at [21, 39)
	// "b" at [21, 22)
}

// tinyAdapter copies the fixture's adapter into dir with a vocab.txt.
func tinyAdapter(dir string) (string, error) {
	src := filepath.Join("..", "testdata", "tiny-bert-qa", "adapter")
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "works", "at", "acme", "lives", "in", "paris", ".", "?"}
	for c := 'a'; c <= 'z'; c++ {
		vocab = append(vocab, string(c), "##"+string(c))
	}
	return dir, os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(vocab, "\n")+"\n"), 0o644)
}
