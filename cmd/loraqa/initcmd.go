package main

import (
	"context"
	"fmt"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch"
)

func shapeConfig(shape string) (bert.Config, error) {
	switch shape {
	case "tiny":
		return bert.TinyDistilBERTConfig(), nil
	case "small":
		c := bert.DefaultDistilBERTConfig()
		c.Dim, c.Layers, c.Heads, c.Hidden = 128, 2, 4, 512
		return c, nil
	case "distilbert-base":
		return bert.DefaultDistilBERTConfig(), nil
	}
	return bert.Config{}, fmt.Errorf("shape %q: want tiny, small or distilbert-base", shape)
}

func runInit(ctx context.Context, args []string) error {
	fs := newFlags("init", "--out DIR --vocab vocab.txt [--shape tiny|small|distilbert-base] [--seed 42]")
	out := fs.String("out", "", "model directory to write")
	vocab := fs.String("vocab", "", "WordPiece vocab.txt (e.g. bert-base-uncased's)")
	shape := fs.String("shape", "small", "tiny (dim 32), small (dim 128) or distilbert-base")
	seed := fs.Int64("seed", 42, "initialisation seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || *vocab == "" {
		return usagef("--out and --vocab are required")
	}
	v, err := os.ReadFile(*vocab)
	if err != nil {
		return err
	}
	cfg, err := shapeConfig(*shape)
	if err != nil {
		return usagef("%v", err)
	}
	cfg.VocabSize = int64(countLines(v))
	torch.ManualSeed(*seed)
	m, err := bert.New(cfg, gotch.CPU, gotch.Float)
	if err != nil {
		return err
	}
	defer m.Drop()
	m.Init()
	if err := m.Save(*out); err != nil {
		return err
	}
	files := map[string]string{
		"vocab.txt":               string(v),
		"tokenizer_config.json":   `{"do_lower_case": true, "model_max_length": 512, "tokenizer_class": "DistilBertTokenizer"}` + "\n",
		"special_tokens_map.json": `{"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}` + "\n",
	}
	for name, content := range files {
		if err := atomicfile.Write(filepath.Join(*out, name), []byte(content)); err != nil {
			return err
		}
	}
	logf("random %s DistilBERT (%d parameters, vocab %d) written to %s", *shape, m.NumParams(), cfg.VocabSize, *out)
	return nil
}

func countLines(b []byte) int {
	n := 0
	for i, c := range b {
		if c == '\n' || (i == len(b)-1) {
			n++
		}
	}
	return n
}
