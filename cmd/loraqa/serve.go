package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/serve"
	"github.com/loraqa/loraqa/torch"
)

func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve", "--adapter NAME=DIR [--adapter NAME=DIR ...] [--model DIR|ID] [--addr HOST:PORT] [--device D] [--merge] [--auth-token-file F] [--tls-cert F --tls-key F]")
	d, ed := serve.DefaultOptions(), engine.DefaultOptions()
	var adapters stringList
	fs.Var(&adapters, "adapter", "NAME=DIR: serve the adapter in DIR as NAME (repeatable; the first is the default; DIR alone: named after the directory)")
	model := fs.String("model", "", "base model directory or hub id (default: the first adapter's base_model_name_or_path; alone: a QA model)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	device := fs.String("device", "auto", "auto, cpu, cuda or cuda:N")
	dtype := fs.String("dtype", "auto", "dtype of the frozen base: fp32, bf16, fp16 (CUDA), int8 (CPU: its linears quantized) or auto (the fastest that holds the numbers here); adapters stay fp32")
	force := fs.Bool("force", false, forceFlagDoc)
	merge := fs.Bool("merge", false, "fold the adapter into the weights (one adapter only)")
	maxSeq := fs.Int("max-seq-length", 0, windowsFlagDoc)
	stride := fs.Int("doc-stride", 0, strideFlagDoc)
	maxBatch := fs.Int("max-batch", ed.MaxBatch, "most queries the model worker takes in one cycle")
	window := fs.Duration("batch-window", ed.BatchWindow, "how long the worker waits for more queries after the first (0: take only those queued)")
	fuse := fs.Bool("fuse", false, "run all queries of one adapter in a cycle through one forward (faster on a GPU; scores may then differ from predict's in the last float32 bits)")
	maxBody := fs.Int64("max-body", d.MaxBody, "largest request body in bytes (413 beyond)")
	maxContext := fs.Int("max-context", d.MaxContext, "longest context in characters (413 beyond)")
	maxItems := fs.Int("max-batch-items", d.MaxBatchItems, "most requests in one POST /v1/answer/batch")
	queue := fs.Int("queue", ed.Queue, "queries waiting for the worker before answering 429")
	timeout := fs.Duration("timeout", d.Timeout, "per-request time limit, queueing included (504 beyond)")
	threads := fs.Int("threads", 0, "LibTorch threads of the model worker (0: LibTorch's default)")
	releaseIdle := fs.Duration("release-idle", ed.ReleaseIdle, "hand freed memory back to the OS after this long without queries (0: never)")
	authFile := fs.String("auth-token-file", os.Getenv("LORAQA_AUTH_TOKEN_FILE"), "file of bearer tokens, one per line, that the answer routes need (env LORAQA_AUTH_TOKEN_FILE)")
	adminFile := fs.String("admin-token-file", os.Getenv("LORAQA_ADMIN_TOKEN_FILE"), "file of admin bearer tokens, needed to load and unload adapters (env LORAQA_ADMIN_TOKEN_FILE; none: adapters cannot change)")
	metricsAuth := fs.Bool("metrics-auth", false, "/metrics needs a bearer token too")
	adapterRoot := fs.String("adapter-root", "", "directory that POST /v1/adapters loads adapters from (empty: loading is off)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) file: serve HTTPS")
	tlsKey := fs.String("tls-key", "", "PEM private key file of --tls-cert")
	insecure := fs.Bool("insecure", false, "allow a non-loopback --addr without --auth-token-file (access control done in front)")
	var squad2 squad2Flags
	squad2.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *releaseIdle < 0 {
		return usagef("--release-idle %v: want a duration of 0 (never) or more", *releaseIdle)
	}
	if len(adapters) == 0 && *model == "" {
		return usagef("give --adapter NAME=DIR (repeatable) or --model (a QA model)")
	}
	if *merge && len(adapters) != 1 {
		return usagef("--merge needs exactly one adapter, got %d", len(adapters))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if err := serve.CheckListen(*addr, *authFile != "", *insecure); err != nil {
		return err
	}
	dev, err := torch.ParseDevice(*device)
	if err != nil {
		return err
	}
	var users, admins []string
	if *authFile != "" {
		if users, err = serve.ReadTokens(*authFile); err != nil {
			return fmt.Errorf("serve: --auth-token-file: %w", err)
		}
	}
	if *adminFile != "" {
		if admins, err = serve.ReadTokens(*adminFile); err != nil {
			return fmt.Errorf("serve: --admin-token-file: %w", err)
		}
	}
	if *metricsAuth && len(users) == 0 {
		return usagef("--metrics-auth needs --auth-token-file")
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("serve: --tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	dt, warned, err := resolveDType("--dtype", *dtype, dev, *force, true)
	if err != nil {
		return err
	}
	o, eo := d, ed
	o.Metrics = serve.NewMetrics()
	eo.Model, eo.Device, eo.DType, eo.Merge, eo.Hub, eo.Logf = *model, dev, dt, *merge, hubOptions(), logfExcept(warned)
	eo.Features.MaxSeqLength, eo.Features.DocStride = *maxSeq, *stride
	eo.MaxBatch, eo.BatchWindow, eo.Fuse, eo.Queue, eo.Threads = *maxBatch, *window, *fuse, *queue, *threads
	eo.ReleaseIdle = *releaseIdle
	eo.Observer = o.Metrics
	if err := squad2.apply(&eo, false); err != nil {
		return err
	}
	o.MaxBody, o.MaxContext, o.MaxBatchItems, o.Timeout = *maxBody, *maxContext, *maxItems, *timeout
	o.AuthTokens, o.AdminTokens, o.MetricsAuth, o.AdapterRoot, o.TLS = users, admins, *metricsAuth, *adapterRoot, tlsConfig
	o.Logger, o.Logf = slog.New(slog.NewJSONHandler(os.Stderr, nil)), logf
	for _, a := range adapters {
		na, err := parseAdapterFlag(a)
		if err != nil {
			return err
		}
		eo.Adapters = append(eo.Adapters, na)
	}
	if *adapterRoot != "" { // before loading the models: a wrong root fails at once
		if fi, err := os.Stat(*adapterRoot); err != nil || !fi.IsDir() {
			return fmt.Errorf("serve: --adapter-root %s is not a directory", *adapterRoot)
		}
	}
	engine.Tune(logf)
	eng, err := engine.Load(ctx, eo)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer eng.Close()
	srv, err := serve.New(eng, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	names := make([]string, len(eo.Adapters))
	for i, a := range eo.Adapters {
		names[i] = a.Name
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	logf("serving on %s://%s (auth %v, device %s, adapters %s, default %q)", scheme, ln.Addr(), len(users) > 0, torch.DeviceName(dev), strings.Join(names, ", "), srv.Default())
	if err := srv.Run(ctx, ln); err != nil {
		return err
	}
	logf("serve: stopped")
	return nil
}

// parseAdapterFlag reads NAME=DIR, or DIR named after its last element.
func parseAdapterFlag(s string) (serve.NamedAdapter, error) {
	name, dir, ok := strings.Cut(s, "=")
	if !ok {
		dir = s
		name = filepath.Base(filepath.Clean(s))
	}
	if name == "" || dir == "" {
		return serve.NamedAdapter{}, usagef("--adapter %q: want NAME=DIR", s)
	}
	return serve.NamedAdapter{Name: name, Dir: dir}, nil
}
