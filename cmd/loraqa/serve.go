package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/loraqa/loraqa/infer"
	"github.com/loraqa/loraqa/torch"
)

func init() {
	register("serve", "answer questions over HTTP with one base model and any number of adapters", runServe)
}

func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve", "--adapter NAME=DIR [--adapter NAME=DIR ...] [--model DIR|ID] [--addr HOST:PORT] [--device D] [--merge]")
	d := infer.DefaultServerOptions()
	var adapters stringList
	fs.Var(&adapters, "adapter", "NAME=DIR: serve the adapter in DIR as NAME (repeatable; the first is the default; DIR alone: named after the directory)")
	model := fs.String("model", "", "base model directory or hub id (default: the first adapter's base_model_name_or_path; alone: a QA model)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	device := fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	dtype := fs.String("dtype", "fp32", "dtype of the frozen base: fp32, bf16, or fp16 (CUDA); adapters stay fp32")
	merge := fs.Bool("merge", false, "fold the adapter into the weights (one adapter only)")
	maxSeq := fs.Int("max-seq-length", d.Features.MaxSeqLength, "tokens per window (as predict)")
	stride := fs.Int("doc-stride", d.Features.DocStride, "tokens of overlap between windows (as predict)")
	maxBatch := fs.Int("max-batch", d.MaxBatch, "most queries the model worker takes in one cycle")
	window := fs.Duration("batch-window", d.BatchWindow, "how long the worker waits for more queries after the first (0: take only those queued)")
	fuse := fs.Bool("fuse", false, "run all queries of one adapter in a cycle through one forward (faster on a GPU; scores may then differ from predict's in the last float32 bits)")
	maxBody := fs.Int64("max-body", d.MaxBody, "largest request body in bytes (413 beyond)")
	maxContext := fs.Int("max-context", d.MaxContext, "longest context in characters (413 beyond)")
	maxItems := fs.Int("max-batch-items", d.MaxBatchItems, "most requests in one POST /v1/answer/batch")
	queue := fs.Int("queue", d.Queue, "queries waiting for the worker before answering 429")
	timeout := fs.Duration("timeout", d.Timeout, "per-request time limit, queueing included (504 beyond)")
	threads := fs.Int("threads", 0, "LibTorch threads of the model worker (0: LibTorch's default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if len(adapters) == 0 && *model == "" {
		return usagef("give --adapter NAME=DIR (repeatable) or --model (a QA model)")
	}
	if *merge && len(adapters) != 1 {
		return usagef("--merge needs exactly one adapter, got %d", len(adapters))
	}
	dev, err := torch.ParseDevice(*device)
	if err != nil {
		return err
	}
	o := d
	dt, err := torch.ParseDType(*dtype, dev)
	if err != nil {
		return usagef("--dtype: %v", err)
	}
	o.Model, o.Device, o.DType, o.Merge, o.Hub, o.Logf = *model, dev, dt, *merge, hubOptions(), logf
	o.Features.MaxSeqLength, o.Features.DocStride = *maxSeq, *stride
	o.MaxBatch, o.BatchWindow, o.Fuse = *maxBatch, *window, *fuse
	o.MaxBody, o.MaxContext, o.MaxBatchItems, o.Queue, o.Timeout, o.Threads = *maxBody, *maxContext, *maxItems, *queue, *timeout, *threads
	for _, a := range adapters {
		na, err := parseAdapterFlag(a)
		if err != nil {
			return err
		}
		o.Adapters = append(o.Adapters, na)
	}
	srv, err := infer.LoadServer(ctx, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	names := make([]string, len(o.Adapters))
	for i, a := range o.Adapters {
		names[i] = a.Name
	}
	logf("serving on http://%s (device %s, adapters %s, default %q)", ln.Addr(), torch.DeviceName(dev), strings.Join(names, ", "), srv.Default())
	if err := srv.Run(ctx, ln); err != nil {
		return err
	}
	logf("serve: stopped")
	return nil
}

// parseAdapterFlag reads NAME=DIR, or DIR named after its last element.
func parseAdapterFlag(s string) (infer.NamedAdapter, error) {
	name, dir, ok := strings.Cut(s, "=")
	if !ok {
		dir = s
		name = filepath.Base(filepath.Clean(s))
	}
	if name == "" || dir == "" {
		return infer.NamedAdapter{}, usagef("--adapter %q: want NAME=DIR", s)
	}
	return infer.NamedAdapter{Name: name, Dir: dir}, nil
}
