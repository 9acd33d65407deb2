package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// benchServeModes are how the worker runs a cycle's queries, compared side
// by side: each query alone, fused one adapter at a time (the worker before
// mixed batches), and fused across adapters (peft.Mixture).
var benchServeModes = []struct {
	name           string
	fuse, separate bool
}{{"per-query", false, false}, {"per-adapter", true, true}, {"mixed", true, false}}

// benchServe measures an engine under concurrent traffic over many adapters:
// it makes adapters random LoRA adapters of the base model (each its own
// lora_B), then for each mode sends requests from clients goroutines, each
// query for a random adapter, and prints one JSON line per mode: requests
// per second, latency percentiles, the worker's cycles and adapter switches.
func benchServe(ctx context.Context, args []string) error {
	fs := newFlags("bench serve", "--model DIR --data FILE [--adapters N] [--clients C] [--requests R] [--modes per-query,per-adapter,mixed]")
	model := fs.String("model", "", "base model directory (with its tokenizer)")
	dataFile := fs.String("data", "", "QA file with contexts (squad, hf-jsonl): the queries, in turn")
	nAdapters := fs.Int("adapters", 8, "random LoRA adapters served")
	clients := fs.Int("clients", 16, "concurrent clients")
	requests := fs.Int("requests", 320, "requests per mode")
	warmup := fs.Int("warmup", 32, "untimed requests per mode first")
	maxSeq := fs.Int("max-seq-length", 384, "windows")
	stride := fs.Int("doc-stride", 128, "window stride")
	threads := fs.Int("threads", 0, "LibTorch threads of the worker (0: all CPUs)")
	window := fs.Duration("batch-window", 5*time.Millisecond, "how long the worker gathers queries")
	maxBatch := fs.Int("max-batch", 32, "most queries in one cycle")
	seed := fs.Int64("seed", 0, "seed")
	only := fs.String("modes", "", "comma-separated modes to run (default: all three)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || *dataFile == "" {
		return usagef("bench serve needs --model DIR and --data FILE")
	}
	if *nAdapters < 1 || *clients < 1 || *requests < 1 {
		return usagef("--adapters, --clients and --requests must be positive")
	}
	rr, err := data.ReadFile(*dataFile, "auto")
	if err != nil {
		return err
	}
	if len(rr.Examples) == 0 {
		return fmt.Errorf("bench serve: %s has no questions with contexts", *dataFile)
	}
	dir, err := os.MkdirTemp("", "loraqa-bench-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names, err := randomAdapters(*model, dir, *nAdapters, *seed)
	if err != nil {
		return err
	}
	modes := benchServeModes
	if *only != "" {
		modes = modes[:0:0]
		for _, m := range benchServeModes {
			if slices.Contains(strings.Split(*only, ","), m.name) {
				modes = append(modes, m)
			}
		}
	}
	for _, m := range modes {
		o := engine.DefaultOptions()
		o.Model, o.Device, o.Threads = *model, gotch.CPU, *threads
		o.Fuse, o.SeparateAdapters, o.MaxBatch, o.BatchWindow = m.fuse, m.separate, *maxBatch, *window
		o.Features.MaxSeqLength, o.Features.DocStride = *maxSeq, *stride
		o.Queue = max(o.Queue, *clients*2)
		for _, n := range names {
			o.Adapters = append(o.Adapters, engine.NamedAdapter{Name: n, Dir: filepath.Join(dir, n)})
		}
		obs := &cycleCounter{}
		o.Observer = obs
		e, err := engine.Load(ctx, o)
		if err != nil {
			return err
		}
		r := rand.New(rand.NewSource(*seed))
		query := func(i int) engine.Query {
			ex := rr.Examples[i%len(rr.Examples)]
			return engine.Query{Question: ex.Question, Context: ex.Context, Adapter: names[r.Intn(len(names))]}
		}
		if _, _, err := drive(ctx, e, *clients, *warmup, query); err != nil {
			e.Close()
			return err
		}
		obs.reset()
		lat, wall, err := drive(ctx, e, *clients, *requests, query)
		e.Close()
		if err != nil {
			return err
		}
		cycles, queries, switches := obs.counts()
		res := map[string]any{"mode": "serve", "batching": m.name, "adapters": len(names), "clients": *clients,
			"requests": *requests, "req_per_s": float64(*requests) / wall.Seconds(),
			"p50_ms": percentile(lat, 0.50), "p90_ms": percentile(lat, 0.90), "p99_ms": percentile(lat, 0.99),
			"cycles": cycles, "queries_per_cycle": float64(queries) / float64(max(cycles, 1)), "adapter_switches": switches,
			"max_seq_length": *maxSeq, "threads": torch.Threads(), "libtorch": torch.LibTorchVersion(),
			"cpu": torch.HostCPU().Model, "cpu_flags": torch.HostCPU().Flags}
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
	return nil
}

// drive sends n queries from c clients and returns each latency in ms and
// the wall time.
func drive(ctx context.Context, e *engine.Engine, c, n int, query func(i int) engine.Query) ([]float64, time.Duration, error) {
	var mu sync.Mutex
	qs := make([]engine.Query, n)
	for i := range qs {
		qs[i] = query(i)
	}
	lat := make([]float64, n)
	next := 0
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				_, err := e.Answer(ctx, qs[i])
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// percentile is the q-quantile of v (nearest rank).
func percentile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// cycleCounter is an engine.Observer that counts the worker's cycles, the
// queries they ran and its adapter switches.
type cycleCounter struct {
	mu                        sync.Mutex
	cycles, queries, switches int
}

func (c *cycleCounter) CycleStart(n int) {
	c.mu.Lock()
	c.cycles++
	c.queries += n
	c.mu.Unlock()
}
func (c *cycleCounter) CycleEnd(time.Duration)   {}
func (c *cycleCounter) Forward(string, int, int) {}
func (c *cycleCounter) MemoryReleased()          {}
func (c *cycleCounter) AdapterSwitch() {
	c.mu.Lock()
	c.switches++
	c.mu.Unlock()
}
func (c *cycleCounter) reset() {
	c.mu.Lock()
	c.cycles, c.queries, c.switches = 0, 0, 0
	c.mu.Unlock()
}
func (c *cycleCounter) counts() (cycles, queries, switches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cycles, c.queries, c.switches
}

// randomAdapters writes n LoRA adapters (PEFT's QA defaults) of the base in
// model to dir/a0 ... dir/a{n-1}, each with random lora_B so that they
// answer differently, and returns their names.
func randomAdapters(model, dir string, n int, seed int64) ([]string, error) {
	m, err := bert.Load(model, bert.LoadOptions{Device: gotch.CPU, DType: gotch.Float})
	if err != nil {
		return nil, err
	}
	defer m.Drop()
	torch.ManualSeed(seed)
	cfg := peft.DefaultConfig()
	cfg.BaseModel, cfg.TargetModules = model, peft.DefaultTargets(m.Config.ModelType)
	names := make([]string, n)
	for i := range names {
		a, err := peft.Inject(m, cfg)
		if err != nil {
			return nil, err
		}
		torch.NoGrad(func() {
			for _, l := range a.Layers {
				r := ts.MustRandn(l.B.MustSize(), gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(0.02), true)
				l.B.Copy_(r)
				r.MustDrop()
			}
		})
		names[i] = fmt.Sprintf("a%d", i)
		err = peft.NewDir(a).Write(filepath.Join(dir, names[i]))
		a.Drop()
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}
