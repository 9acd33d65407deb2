package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

// benchFlops counts matmul FLOPs as ../shared/tools/bench_reference.py does.
func benchFlops(c bert.Config, B, L, r int64, train bool) float64 {
	d, h, n := float64(c.Dim), float64(c.Hidden), float64(c.Layers)
	lin := n * (8*d*d + 4*d*h)
	attn := n * 4 * float64(L) * d
	lora := n * 2 * 4 * d * float64(r)
	head := 4 * d
	if train {
		return float64(B*L) * (2*lin + 3*attn + 3*lora + 3*head)
	}
	return float64(B*L) * (lin + attn + lora + head)
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

// currentRSSMB is the process's resident memory now (VmRSS), in MiB; peak_rss_mb
// also counts what building the model took (a float32 base before int8).
func currentRSSMB() (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

func randomBatch(r *rand.Rand, B, L int, vocab int64) *data.Batch {
	b := &data.Batch{Rows: B, SeqLen: L, InputIDs: make([]int64, B*L), AttentionMask: make([]int64, B*L),
		StartPositions: make([]int64, B), EndPositions: make([]int64, B)}
	for i := 0; i < B; i++ {
		for j := 0; j < L; j++ {
			b.InputIDs[i*L+j] = 1000 + r.Int63n(vocab-1000)
			b.AttentionMask[i*L+j] = 1
		}
		b.InputIDs[i*L], b.InputIDs[i*L+L-1] = 101, 102
		s := 1 + r.Intn(L-2)
		b.StartPositions[i] = int64(s)
		b.EndPositions[i] = int64(min(s+r.Intn(8), L-2))
	}
	return b
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "serve" {
		return benchServe(ctx, args[1:])
	}
	if len(args) == 0 || (args[0] != "train" && args[0] != "infer" && args[0] != "data") {
		return usagef("usage: loraqa bench train|infer|data|serve [flags] (-h for the flags)")
	}
	mode := args[0]
	fs := newFlags("bench "+mode, "--shape distilbert-base|tiny --batch B --seq L --steps N --warmup W [--threads T] [--device D] [--merged]")
	shape := fs.String("shape", "distilbert-base", "tiny, small or distilbert-base")
	batch := fs.Int("batch", 8, "batch size")
	seq := fs.Int("seq", 128, "sequence length")
	steps := fs.Int("steps", 6, "timed steps (or forward runs)")
	optim := fs.String("optim", "auto", "train: auto (fused on CUDA), adamw_torch, adamw_torch_fused or adamw_hf")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	threads := fs.Int("threads", 0, "LibTorch threads (0 = all CPUs)")
	dev := fs.String("device", "cpu", "cpu, cuda, cuda:N")
	dtype := fs.String("dtype", "fp32", "dtype of the frozen base: fp32, bf16, fp16 (CUDA), int8 (infer, CPU: the linears quantized) or auto")
	force := fs.Bool("force", false, forceFlagDoc)
	merged := fs.Bool("merged", false, "infer: fold the adapter into the weights")
	dataFile := fs.String("data", "", "data: a QA file to count the tokens of one training epoch")
	model := fs.String("model", "", "data: model dir for the tokenizer")
	seed := fs.Int64("seed", 0, "seed")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if mode == "data" {
		return benchData(ctx, *dataFile, *model, *batch, *seq)
	}
	cfg, err := shapeConfig(*shape)
	if err != nil {
		return usagef("%v", err)
	}
	d, dt, _, err := resolveDevice(*dev, "--dtype", *dtype, *force, mode == "infer")
	if err != nil {
		return err
	}
	if dt == gotch.Int8 && mode == "train" {
		return usagef("--dtype int8 is for inference only: bench infer --dtype int8, or train in fp32 or bf16")
	}
	baseDT := dt
	if dt == gotch.Int8 && *merged {
		baseDT = gotch.Float // quantized after the adapter is merged
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := *threads
	if n <= 0 {
		n = runtime.NumCPU()
	}
	torch.SetThreads(n)
	torch.ManualSeed(*seed)
	m, err := bert.New(cfg, d, baseDT)
	if err != nil {
		return err
	}
	defer m.Drop()
	m.Init()
	if m.Int8() {
		torch.ReleaseMemory() // the float32 weights freed while quantizing, as engine.Load does
	}
	a, err := peft.Inject(m, peft.DefaultConfig())
	if err != nil {
		return err
	}
	defer a.Drop()
	r := rand.New(rand.NewSource(*seed + 1))
	var times []float64
	res := map[string]any{"mode": mode, "shape": *shape, "batch": *batch, "seq": *seq, "steps": *steps, "warmup": *warmup,
		"device": torch.DeviceName(d), "dtype": torch.DTypeName(dt), "libtorch": torch.LibTorchVersion(), "libtorch_source": torch.Source(), "blas": torch.LoadedBLAS(), "threads": torch.Threads()}
	switch mode {
	case "train":
		o := train.DefaultOptions()
		o.Epochs, o.MaxSteps, o.Optim = 1, int64(*steps+*warmup), *optim
		tr := &train.Trainer{Model: m, Adapter: a, Train: []data.Feature{{InputIDs: []int64{0}, AttentionMask: []int64{1}}}, Opt: o}
		defer tr.Close()
		batches := make([]*data.Batch, *steps+*warmup)
		for i := range batches {
			batches[i] = randomBatch(r, *batch, *seq, cfg.VocabSize)
		}
		live := 0
		var stats []train.StepStats
		var mem []float64
		var timed time.Time
		for i, b := range batches {
			if i == *warmup {
				torch.Synchronize(d)
				live = torch.LiveTensors()
				timed = time.Now()
			}
			t0 := time.Now()
			st, err := tr.Step(b)
			if err != nil {
				return err
			}
			if d.IsCuda() {
				// GPU steps are asynchronous: per-step times are launch times;
				// the figure is the timed steps' total after one sync.
				mem = append(mem, float64(torch.CUDAMemUsed())/(1<<20))
			}
			dt := time.Since(t0).Seconds()
			if i < *warmup || i == len(batches)-1 || !d.IsCuda() {
				loss, _ := tr.LastLoss()
				fmt.Fprintf(os.Stderr, "step %d/%d: %.3f s loss %.4f; %d LibTorch calls (%d in the update), %d host syncs\n", i+1, len(batches), dt, loss, st.Calls, st.UpdateCalls, st.HostSyncs)
			}
			if i >= *warmup {
				times = append(times, dt)
				stats = append(stats, st)
			}
		}
		torch.Synchronize(d)
		if d.IsCuda() && len(times) > 0 {
			per := time.Since(timed).Seconds() / float64(len(times))
			for i := range times {
				times[i] = per
			}
			res["device_mem_mb"] = mem
		}
		if len(stats) > 0 {
			var calls, upd, syncs int64
			for _, st := range stats {
				calls += st.Calls
				upd += st.UpdateCalls
				syncs += st.HostSyncs
			}
			n := float64(len(stats))
			res["calls_per_step"] = float64(calls) / n
			res["optimizer_calls_per_step"] = float64(upd) / n
			res["syncs_per_step"] = float64(syncs) / n
		}
		res["optim"] = o.Optim
		res["live_tensor_growth"] = torch.LiveTensors() - live
		res["trainable_params"] = a.NumTrainable()
		res["flops_per_step"] = benchFlops(cfg, int64(*batch), int64(*seq), 16, true)
	case "infer":
		if *merged {
			if err := a.Merge(); err != nil {
				return err
			}
		}
		if dt == gotch.Int8 && !m.Int8() {
			if err := m.Quantize(); err != nil {
				return err
			}
			torch.ReleaseMemory()
		}
		if dt == gotch.BFloat16 && !d.IsCuda() && torch.PackedLinearAvailable() == nil {
			if err := m.Pack(); err != nil { // as engine.Load does
				return err
			}
		}
		b := randomBatch(r, *batch, *seq, cfg.VocabSize)
		in := bert.Batch{InputIDs: torch.FromInt64(b.InputIDs, b.Shape(), d), AttentionMask: torch.FromInt64(b.AttentionMask, b.Shape(), d)}
		defer in.InputIDs.MustDrop()
		defer in.AttentionMask.MustDrop()
		for i := 0; i < *steps+*warmup; i++ {
			t0 := time.Now()
			torch.NoGrad(func() {
				out := m.Forward(in, false)
				_ = torch.ToFloat32(out.StartLogits)
				out.Drop()
			})
			if i >= *warmup {
				times = append(times, time.Since(t0).Seconds())
			}
		}
		res["merged"] = *merged
		res["flops_per_step"] = benchFlops(cfg, int64(*batch), int64(*seq), 16, false)
	}
	med := median(times)
	res["step_seconds"] = times
	res["step_ms_median"] = med * 1000
	res["examples_per_s"] = float64(*batch) / med
	res["tokens_per_s"] = float64(*batch**seq) / med
	res["achieved_gflops_per_s"] = res["flops_per_step"].(float64) / med / 1e9
	res["peak_rss_mb"] = peakRSSMB()
	if rss, ok := currentRSSMB(); ok {
		res["rss_mb"] = rss
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(res)
}

// benchData counts the tokens one training epoch computes on real data with
// windows of seq and stride seq/3: padded to seq versus padded per batch after
// length bucketing.
func benchData(ctx context.Context, file, model string, batch, seq int) error {
	if file == "" || model == "" {
		return usagef("bench data needs --data F and --model DIR")
	}
	dir := model
	if st, err := os.Stat(model); err != nil || !st.IsDir() {
		if dir, err = resolveModel(ctx, model); err != nil {
			return err
		}
	}
	tok, err := data.LoadTokenizer(dir)
	if err != nil {
		return err
	}
	rr, err := data.ReadFile(file, "auto")
	if err != nil {
		return err
	}
	fo := data.DefaultFeatureOptions()
	fo.MaxSeqLength, fo.DocStride = seq, 128
	if fo.DocStride >= seq/2 {
		fo.DocStride = seq / 3
	}
	feats, _, err := data.Featurize(tok, data.BuildDataset(rr, data.BuildOptions{}), fo)
	if err != nil {
		return err
	}
	count := func(bucket int) int64 {
		b, _ := data.NewBatcher(feats, data.BatchOptions{BatchSize: batch, Shuffle: true, Seed: 42, BucketBatches: bucket})
		var n int64
		for _, idx := range b.Plan(0) {
			n += int64(b.Make(idx).Rows * b.Make(idx).SeqLen)
		}
		return n
	}
	padded := int64(len(feats)) * int64(seq)
	dyn, bucketed := count(0), count(50)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"mode": "data", "windows": len(feats), "batch": batch, "seq": seq,
		"doc_stride": fo.DocStride, "tokens_padded_to_max": padded, "tokens_dynamic_padding": dyn, "tokens_bucketed": bucketed,
		"ratio_dynamic": float64(dyn) / float64(padded), "ratio_bucketed": float64(bucketed) / float64(padded)})
}
