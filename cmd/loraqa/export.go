package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// runExport writes base + adapter as one model directory that transformers'
// AutoModelForQuestionAnswering (and loraqa predict --model) loads without
// PEFT. It is built in a temporary directory beside --out and renamed into
// place, so an interrupted export leaves nothing half-written, and an existing
// --out is never overwritten.
func runExport(ctx context.Context, args []string) error {
	fs := newFlags("export", "--adapter DIR --out DIR [--model M]")
	adapter := fs.String("adapter", "", "adapter directory (adapter_config.json + weights)")
	model := fs.String("model", "", "base model dir or hub id (default: the adapter's base_model_name_or_path)")
	out := fs.String("out", "", "directory to create with the merged model")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *adapter == "" || *out == "" {
		return usagef("--adapter and --out are required")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("--out %s already exists: give a new directory", *out)
	}
	d, err := peft.OpenDir(*adapter)
	if err != nil {
		return err
	}
	ref := *model
	if ref == "" {
		if ref, err = d.BaseModel(); err != nil {
			return fmt.Errorf("%w (or give --model)", err)
		}
	}
	baseDir, err := hub.Resolve(ctx, ref, hubOptions())
	if err != nil {
		return err
	}
	m, err := bert.Load(baseDir, bert.LoadOptions{})
	if err != nil {
		return err
	}
	defer m.Drop()
	a, err := d.Inject(m)
	if err != nil {
		return err
	}
	defer a.Drop()
	tokDir := baseDir
	if d.Tokenizer != "" {
		tokDir = d.Tokenizer
	}
	err = atomicfile.WriteDir(*out, func(tmp string) error {
		var werr error
		if err := torch.Catch(func() { werr = a.ExportMerged(tmp, tokDir) }); err != nil {
			return err
		}
		return werr
	}, nil)
	if err != nil {
		return fmt.Errorf("export to %s: %w", *out, err)
	}
	_, statErr := os.Stat(filepath.Join(*out, "vocab.txt"))
	_, statErr2 := os.Stat(filepath.Join(*out, "tokenizer.json"))
	fmt.Printf("merged model written to %s (config.json, model.safetensors%s)\n", *out, map[bool]string{true: ", tokenizer files", false: ""}[statErr == nil || statErr2 == nil])
	return nil
}
