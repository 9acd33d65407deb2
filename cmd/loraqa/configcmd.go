package main

import (
	"context"
	"os"

	"github.com/loraqa/loraqa/hub"
)

func runConfig(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "show" {
		return usagef("usage: loraqa config show [--config F] [--set k=v ...]")
	}
	fs := newFlags("config show", "[--config F] [--set k=v ...]")
	var cf configFlags
	cf.register(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	y, err := cfg.YAML()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(y)
	return err
}

func resolveModel(ctx context.Context, ref string) (string, error) {
	return hub.Resolve(ctx, ref, hubOptions())
}
