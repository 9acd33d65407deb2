package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/loraqa/loraqa/verify"
)

var errChecksFailed = errors.New("some checks failed")

func runVerify(ctx context.Context, args []string) error {
	fs := newFlags("verify", "FIXTURE_DIR [--device D] [--dtype fp32|bf16|fp16|int8] [--json]")
	dtype := fs.String("dtype", "fp32", "dtype of the frozen base: fp32, bf16, fp16 (CUDA) or int8 (CPU); half precision compares logits at verify.HalfTolerance, int8 at verify.Int8Tolerance")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	force := fs.Bool("force", false, forceFlagDoc)
	device := fs.String("device", "cpu", "auto, cpu, cuda or cuda:N")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one fixture directory, got %d arguments", fs.NArg())
	}
	dev, dt, _, err := resolveDevice(*device, "--dtype", *dtype, *force, false)
	if err != nil {
		return err
	}
	r, err := verify.RunDType(fs.Arg(0), dev, dt)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Printf("fixture %s on %s, base in %s\n", r.Fixture, r.Device, r.DType)
		for _, c := range r.Checks {
			status := "ok  "
			if !c.Pass {
				status = "FAIL"
			}
			fmt.Printf("%s %-66s max |Δ| %.2e  tol %.0e", status, c.Name, c.MaxDiff, c.Tolerance)
			if c.Note != "" {
				fmt.Printf("  (%s)", c.Note)
			}
			fmt.Println()
		}
		for _, s := range r.Skipped {
			fmt.Printf("skip %s\n", s)
		}
	}
	if len(r.Checks) == 0 {
		return fmt.Errorf("%s: no check could run (it has no expected.json and no train_step.json with adapter/)", r.Fixture)
	}
	if !r.Pass {
		return errChecksFailed
	}
	if !*asJSON {
		fmt.Printf("all %d checks passed\n", len(r.Checks))
	}
	return nil
}
