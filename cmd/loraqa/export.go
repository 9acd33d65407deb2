package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

func init() {
	register("export", "fold an adapter into its base: a standalone HF QA model directory", runExport)
}

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
	ref := *model
	if ref == "" {
		base, err := peft.BaseModel(*adapter)
		if err != nil {
			return err
		}
		ref = base
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
	a, err := peft.Load(*adapter, m)
	if err != nil {
		return err
	}
	defer a.Drop()
	tokDir := baseDir
	if peft.HasTokenizer(*adapter) {
		tokDir = *adapter
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(*out)), "."+filepath.Base(*out)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var werr error
	if err := torch.Catch(func() { werr = a.ExportMerged(tmp, tokDir) }); err != nil || werr != nil {
		if err == nil {
			err = werr
		}
		return fmt.Errorf("export to %s: %w", *out, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Printf("merged model written to %s (config.json, model.safetensors%s)\n", *out, map[bool]string{true: ", tokenizer files", false: ""}[peft.HasTokenizer(*out)])
	return nil
}
