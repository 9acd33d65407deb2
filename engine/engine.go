// Package engine answers extractive questions with one base model (BERT or
// DistilBERT, on LibTorch) and any number of LoRA adapters over it. It is the
// library behind `loraqa predict`, `eval` and `serve`, and what another Go
// service imports to answer questions in-process.
//
// Load reads the base (a directory or a hub id; by default the first
// adapter's base_model_name_or_path), injects every adapter, and starts one
// model worker: the only goroutine that runs the model. Answer and
// AnswerBatch queue their queries for it; it takes them in batches (up to
// MaxBatch, gathered for at most BatchWindow) and runs them adapter by
// adapter, attaching each adapter in turn. A context is cut into windows of
// max_seq_length tokens overlapping by doc_stride (by default the windows the
// adapter was trained with, see peft.Dir), every window is run, and the
// best spans over all windows are returned (Hugging Face's post-processing).
// Predict runs a whole data set through one adapter at once (eval).
//
// An adapter trained for SQuAD 2.0 (peft.Dir's SQuAD2: `loraqa train` on
// data with unanswerable questions) abstains as Hugging Face's
// version_2_with_negative post-processing does: the null answer "" (the
// [CLS] logits) competes with the spans, and a query is answered "" — an
// Answer with NoAnswer set, its NullScore and BestSpanScore saying why —
// when its null score beats its best span's by more than the adapter's saved
// null_score_diff_threshold. Each adapter keeps its own setting;
// Options.Version2WithNegative and Options.NullScoreDiffThreshold override
// them for all.
//
// Device and dtype are typed values (gotch.Device, gotch.DType; the zero ones
// mean the best device and fp32), parsed from text once by the caller with
// torch.ParseDevice and torch.ParseDType. Every long call takes a
// context.Context first.
// Errors are plain Go errors; the sentinels ErrBadInput, ErrUnknownAdapter,
// ErrUnloaded, ErrBusy, ErrClosed, ErrAdapterExists and ErrBadAdapter tell a
// caller (the HTTP server in package serve, for one) what kind of failure it
// was through errors.Is. A LibTorch failure wraps a *torch.Error.
//
// The HTTP API (routes, auth, metrics, OpenAPI) is package serve, a thin
// layer over an Engine; this package knows nothing of HTTP.
//
// Load changes no process-wide setting: a program that wants loraqa's
// runtime settings (a server's malloc tuning) calls Tune itself.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sync"
	"time"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// ErrBadInput is the kind of a query that cannot be answered as given (an
// empty question or context, a question longer than a window). Every error
// the engine returns wraps one of these kinds, for errors.Is, and says what
// exactly was wrong.
var ErrBadInput = errors.New("bad input")

// ErrUnknownAdapter is the kind of a query or call that names an adapter that
// is not loaded.
var ErrUnknownAdapter = errors.New("unknown adapter")

// ErrUnloaded is the kind of a query whose adapter was unloaded after the
// query was queued.
var ErrUnloaded = errors.New("the adapter was unloaded")

// ErrBusy is returned when the queue has no room for the queries; retry
// later.
var ErrBusy = errors.New("the queue is full")

// ErrOutOfMemory is the kind of a query whose forward pass ran the model's
// device out of memory. The tensors of that forward are freed already (and
// the CUDA cache emptied), so the next queries run as before; retry later.
var ErrOutOfMemory = errors.New("out of memory")

// ErrClosed is returned when the engine is shutting down or closed.
var ErrClosed = errors.New("the engine is shutting down")

// ErrAdapterExists is the kind of a LoadAdapter with a name already loaded.
var ErrAdapterExists = errors.New("adapter already loaded")

// ErrBadAdapter is the kind of an adapter that cannot be loaded or unloaded
// here (a bad config, shapes that do not fit the base, trained biases that
// cannot share the base, the default adapter, a merged one).
var ErrBadAdapter = errors.New("adapter refused")

// NamedAdapter is an adapter directory served under a name.
type NamedAdapter struct {
	Name, Dir string
}

// Observer hears what the model worker does (the server's metrics). Its
// methods are called on the worker and must not block.
type Observer interface {
	CycleStart(queries int)                       // a batch of queries is about to run
	Forward(adapter string, windows, queries int) // one forward pass over windows of queries
	CycleEnd(d time.Duration)                     // the batch is answered
	AdapterSwitch()                               // an adapter was attached or detached
	MemoryReleased()                              // idle for Options.ReleaseIdle: freed memory went back to the OS
}

// Options say what to load and how the worker batches.
type Options struct {
	Model    string         // base model dir or hub id; "" = the first adapter's base_model_name_or_path
	Adapters []NamedAdapter // the first adapter is the default; none: the model alone (a QA model)
	Device   gotch.Device   // the zero Device: CUDA when available, else the CPU (torch.ParseDevice reads "cuda:1")
	// DType of the frozen base: gotch.Float (also the zero DType), BFloat16,
	// Half (CUDA), or Int8: the base's linears quantized to int8 on the CPU
	// (bert.Model.Quantize; the adapters run over them in float32; with
	// Merge the merged weights are quantized).
	DType gotch.DType
	Hub   hub.Options
	Merge bool // fold the adapter into the weights (faster; one adapter only)
	// Features are the windows. MaxSeqLength or DocStride 0 take the
	// default: the adapter's training windows (peft.Dir), capped by
	// the model's positions.
	Features data.FeatureOptions
	// Post is the post-processing (n best, longest answer). Each adapter's
	// SQuAD 2.0 setting (peft.Dir.SQuAD2: version_2_with_negative and its
	// null_score_diff_threshold) replaces Post's for its answers, unless
	// Version2WithNegative or NullScoreDiffThreshold say otherwise.
	Post data.PostprocessOptions
	// Version2WithNegative, when set, turns SQuAD 2.0 post-processing on
	// (true) or off (false) for every adapter (and the base alone); nil:
	// each adapter as it was trained (its saved setting, else
	// Post.Version2WithNegative).
	Version2WithNegative *bool
	// NullScoreDiffThreshold, when set, is the null_score_diff_threshold of
	// every adapter with SQuAD 2.0 on: a query is answered "" when its null
	// score − its best span's score > it. nil: each adapter's saved
	// threshold, else Post.NullScoreDiffThreshold. Not NaN.
	NullScoreDiffThreshold *float64
	BatchSize              int // windows per forward pass
	// MaxBatch is the most queries one batching cycle of the model worker
	// takes; BatchWindow how long it waits for more after the first.
	MaxBatch    int
	BatchWindow time.Duration
	// Fuse runs the windows of all queries of a cycle through shared
	// forwards (fewer, larger ones), whatever their adapters: the base runs
	// once for the batch and each row adds its own adapter's LoRA update
	// (peft.Mixture; DoRA adapters run one adapter at a time). Without it
	// each query runs on its own, so the answers are bit-identical to
	// Predict's for that query alone; with it scores may differ in the last
	// bits of float32.
	Fuse bool
	// SeparateAdapters, with Fuse, gives each adapter's queries forwards of
	// their own, as the worker did before mixed batches (to compare them).
	SeparateAdapters bool
	// ReleaseIdle is how long the model worker waits without a query
	// before it hands the memory freed since its last cycle back to the OS
	// (torch.ReleaseMemory: glibc's malloc_trim and the Go heap). While
	// queries keep coming malloc reuses that memory, which is fast; once
	// they stop the process shrinks to what it holds. 0: never.
	ReleaseIdle time.Duration
	Queue       int                           // queries waiting for the worker before ErrBusy
	Threads     int                           // LibTorch intra-op threads of the worker; 0 leaves the default
	Logf        func(format string, a ...any) // notices while loading; nil: none
	Observer    Observer                      // hears the model worker; nil: none
}

// DefaultOptions: the adapter's windows, batch 32 windows per forward, 32
// queries per cycle gathered for at most 5 ms, 256 queued queries, freed
// memory released after 2 s without queries, fp32 on the best device.
func DefaultOptions() Options {
	f := data.DefaultFeatureOptions()
	f.MaxSeqLength, f.DocStride = 0, 0
	return Options{
		Features: f, Post: data.DefaultPostprocessOptions(), BatchSize: 32,
		MaxBatch: 32, BatchWindow: 5 * time.Millisecond, Queue: 256,
		ReleaseIdle: 2 * time.Second,
	}
}

// AdapterNamePattern is what an adapter name matches: letters, digits,
// '.', '_' and '-', at most 64, starting with a letter or digit.
const AdapterNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var adapterName = regexp.MustCompile(AdapterNamePattern)

// ValidAdapterName reports whether name may name an adapter: letters,
// digits, '.', '_' and '-', at most 64, not starting with a sign.
func ValidAdapterName(name string) bool { return adapterName.MatchString(name) }

// checkName is the name rule of Options.Adapters and LoadAdapter.
func checkName(name string) error {
	if !ValidAdapterName(name) {
		return kindf(ErrBadInput, "adapter name %q: use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit", name)
	}
	return nil
}

func (o *Options) check() error {
	as := o.Adapters
	switch {
	case o.MaxBatch < 1 || o.Queue < 1 || o.BatchSize < 1:
		return fmt.Errorf("max batch %d, queue %d and forward batch %d must all be positive", o.MaxBatch, o.Queue, o.BatchSize)
	case o.BatchWindow < 0:
		return fmt.Errorf("batch window %v must not be negative", o.BatchWindow)
	case o.Merge && len(as) != 1:
		return fmt.Errorf("merging folds one adapter into the weights; %d adapters given", len(as))
	case o.NullScoreDiffThreshold != nil && math.IsNaN(*o.NullScoreDiffThreshold):
		return errors.New("null_score_diff_threshold is NaN: give a number")
	}
	seen := map[string]bool{}
	for _, a := range as {
		if err := checkName(a.Name); err != nil {
			return err
		}
		if seen[a.Name] {
			return fmt.Errorf("adapter name %q is given twice", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

// served is one way of answering: an adapter (nil: the base model alone),
// the tokenizer and the windows that go with it.
type served struct {
	Name    string
	Dir     string
	adapter *peft.Adapter
	tok     *data.Tokenizer
	ownTok  bool                    // tok is the adapter directory's, not the base's
	feat    data.FeatureOptions     // resolved windows
	post    data.PostprocessOptions // resolved post-processing (SQuAD 2.0 and its threshold)
	gone    bool                    // unloaded; the worker's alone
}

// Engine holds a base model, its adapters and the model worker. Its
// methods are safe for concurrent use.
type Engine struct {
	opt     Options
	dev     gotch.Device
	dtype   gotch.DType
	model   *bert.Model
	baseDir string
	obs     Observer
	amu     sync.RWMutex // guards models and byName (adapters change at run time)
	models  []*served    // in the order loaded; models[0] is the default
	byName  map[string]*served
	active  *served       // attached to the model; the worker's alone after loading
	admin   chan struct{} // one adapter change at a time: at most one control job queued

	qmu     sync.Mutex
	queue   chan *job
	pending int
	closed  bool

	workerDone chan struct{}
	freeOnce   sync.Once
}

type nopObserver struct{}

func (nopObserver) CycleStart(int)           {}
func (nopObserver) Forward(string, int, int) {}
func (nopObserver) CycleEnd(time.Duration)   {}
func (nopObserver) AdapterSwitch()           {}
func (nopObserver) MemoryReleased()          {}

// Load loads the base model once, every adapter over it, and starts the
// model worker. Close frees them.
func Load(ctx context.Context, opt Options) (*Engine, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	dev := torch.DeviceOrAuto(opt.Device)
	dt, err := torch.CheckDType(opt.DType, dev)
	if err != nil {
		return nil, err
	}
	if warning, _ := torch.CheckPrecision(dt, dev, torch.HostCPU(), torch.HostRates, true); warning != "" && opt.Logf != nil {
		opt.Logf("%s", warning) // the CLI refuses this unless --force; a library caller hears it
	}
	as := opt.Adapters
	dirs := make([]*peft.Dir, len(as)) // each adapter directory, read once
	for i, na := range as {
		if dirs[i], err = peft.OpenDir(na.Dir); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", na.Name, err)
		}
	}
	ref := opt.Model
	if ref == "" {
		if len(as) == 0 {
			return nil, errors.New("no base model: name one, or an adapter (its base_model_name_or_path names it)")
		}
		if ref, err = dirs[0].BaseModel(); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", as[0].Name, err)
		}
	}
	dir, err := hub.Resolve(ctx, ref, opt.Hub)
	if err != nil {
		return nil, err
	}
	logf := opt.Logf
	if len(as) > 0 {
		logf = nil // the adapter brings its own QA head: no notice about the base's
	}
	loadDT := dt
	if dt == gotch.Int8 && opt.Merge {
		loadDT = gotch.Float // merged in float32, quantized after (below)
	}
	m, err := bert.Load(dir, bert.LoadOptions{Device: dev, DType: loadDT, Logf: logf})
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opt: opt, dev: dev, dtype: dt, model: m, baseDir: dir, byName: map[string]*served{}, obs: opt.Observer,
		queue: make(chan *job, opt.Queue+1), workerDone: make(chan struct{}), admin: make(chan struct{}, 1), // +1: a control job
	}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	if err := e.loadAdapters(as, dirs); err != nil {
		close(e.workerDone)
		e.free()
		return nil, err
	}
	if dt == gotch.Int8 && !m.Int8() {
		if err := m.Quantize(); err != nil {
			close(e.workerDone)
			e.free()
			return nil, err
		}
	}
	if dt == gotch.BFloat16 && !dev.IsCuda() && torch.PackedLinearAvailable() == nil {
		// Serving only runs forwards: the bf16 weights are packed for oneDNN
		// once instead of on every call (bert.Model.Pack).
		if err := m.Pack(); err != nil {
			close(e.workerDone)
			e.free()
			return nil, err
		}
	}
	// What loading freed (the checkpoint's host copy, float32 weights
	// quantized or packed) goes back to the OS before the first query.
	torch.ReleaseMemory()
	go e.work()
	return e, nil
}

// loadAdapters loads the adapters of Options before the worker starts,
// through the path LoadAdapter takes too (openAdapter, injectAdapter).
func (e *Engine) loadAdapters(as []NamedAdapter, dirs []*peft.Dir) error {
	if len(as) == 0 {
		sv := &served{Dir: e.baseDir, post: e.postFor(nil)}
		tok, err := e.tokenizerFor(nil)
		if err != nil {
			return err
		}
		if err := e.prepareServed(sv, tok, nil); err != nil {
			return err
		}
		e.models = []*served{sv}
		e.active = sv
	}
	shared := len(as) > 1
	for i, na := range as {
		d := dirs[i]
		sv, err := e.openAdapter(na, d, shared)
		if err != nil {
			return err
		}
		if err := e.injectAdapter(sv, d, shared); err != nil {
			return fmt.Errorf("adapter %s (%s): %w", na.Name, na.Dir, err)
		}
		e.models = append(e.models, sv)
		e.byName[na.Name] = sv
		if e.opt.Merge {
			if err := sv.adapter.Merge(); err != nil {
				return fmt.Errorf("adapter %s: %w", na.Name, err)
			}
		}
	}
	return nil
}

// openAdapter checks that the adapter na (its directory read as d) may
// share the base with other adapters when shared (it must not train the
// base's biases, nor may those loaded), and resolves its tokenizer and
// windows. The adapter is not injected yet.
func (e *Engine) openAdapter(na NamedAdapter, d *peft.Dir, shared bool) (*served, error) {
	if shared {
		if d.Config.Bias != "none" {
			return nil, fmt.Errorf("adapter %s trains the base model's biases (bias %q), so it cannot share the base with other adapters: serve it alone", na.Name, d.Config.Bias)
		}
		e.amu.RLock()
		for _, o := range e.models {
			if o.adapter != nil && o.adapter.Config.Bias != "none" {
				e.amu.RUnlock()
				return nil, fmt.Errorf("adapter %s trains the base model's biases: this engine cannot load others", o.Name)
			}
		}
		e.amu.RUnlock()
	}
	tok, err := e.tokenizerFor(d)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", na.Name, err)
	}
	sv := &served{Name: na.Name, Dir: na.Dir, ownTok: d.Tokenizer != "", post: e.postFor(d)}
	if err := e.prepareServed(sv, tok, d.Windows); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", na.Name, err)
	}
	if sv.post.Version2WithNegative && e.opt.Logf != nil {
		from := "given"
		if e.opt.NullScoreDiffThreshold == nil && d.SQuAD2 != nil && d.SQuAD2.Version2WithNegative {
			from = "saved with the adapter, " + peft.SQuAD2File
		}
		e.opt.Logf("adapter %s: SQuAD 2.0 (version_2_with_negative): a question is answered \"\" when its null score beats its best span's by more than %.6g (%s)",
			na.Name, sv.post.NullScoreDiffThreshold, from)
	}
	return sv, nil
}

// postFor is the post-processing of the adapter whose directory is d (nil:
// the base alone): Options.Post, with the adapter's SQuAD 2.0 setting
// (peft.Dir.SQuAD2), then Options.Version2WithNegative and
// Options.NullScoreDiffThreshold when set.
func (e *Engine) postFor(d *peft.Dir) data.PostprocessOptions {
	po := e.opt.Post
	if d != nil && d.SQuAD2 != nil && d.SQuAD2.Version2WithNegative {
		po.Version2WithNegative = true
		po.NullScoreDiffThreshold = d.SQuAD2.NullScoreDiffThreshold
	}
	if v := e.opt.Version2WithNegative; v != nil {
		po.Version2WithNegative = *v
	}
	if th := e.opt.NullScoreDiffThreshold; th != nil {
		po.NullScoreDiffThreshold = *th
	}
	return po
}

// injectAdapter injects d's adapter into the model as sv's, detached
// afterwards when shared (the worker attaches it per query). Only the
// goroutine that owns the model (Load before the worker starts, then the
// worker) calls it.
func (e *Engine) injectAdapter(sv *served, d *peft.Dir, shared bool) error {
	if err := e.detach(); err != nil {
		return err
	}
	a, err := d.Inject(e.model)
	if err != nil {
		return err
	}
	sv.adapter, e.active = a, sv
	if shared {
		if err := a.Detach(); err != nil {
			a.Drop()
			sv.adapter, e.active = nil, nil
			return err
		}
		e.active = nil
	}
	return nil
}

// tokenizerFor is the adapter directory's tokenizer when it holds one
// (d nil: the base model alone), else the base's, loaded once.
func (e *Engine) tokenizerFor(d *peft.Dir) (*data.Tokenizer, error) {
	if d != nil && d.Tokenizer != "" {
		return data.LoadTokenizer(d.Tokenizer)
	}
	e.amu.RLock()
	for _, sv := range e.models {
		if sv.tok != nil && !sv.ownTok {
			e.amu.RUnlock()
			return sv.tok, nil
		}
	}
	e.amu.RUnlock()
	return data.LoadTokenizer(e.baseDir)
}

// prepareServed sets sv's tokenizer, resolves its windows (trained: those
// the adapter was trained with, if recorded), checks them and the tokenizer
// against the model, and cuts a one-word query to check the window options
// before any query does.
func (e *Engine) prepareServed(sv *served, tok *data.Tokenizer, trained *peft.Windows) error {
	sv.tok = tok
	fo := resolveWindows(e.opt.Features, trained, e.model.Config.MaxWindow(), tok.ModelMaxLength())
	sv.feat = fo
	if err := e.model.Config.CheckInputs(fo.MaxSeqLength, tok.VocabSize()); err != nil {
		return fmt.Errorf("%s: %w", e.baseDir, err)
	}
	if _, _, err := featurize(sv, []Query{{Question: "what", Context: "this"}}); err != nil {
		return err
	}
	return nil
}

// Close shuts the engine down (waiting for the worker to answer what is
// queued) and frees the model and adapters.
func (e *Engine) Close() {
	_ = e.Shutdown(context.Background())
	e.free()
}

// Shutdown stops taking queries and waits until the worker has answered
// those already queued (or ctx ends). It does not free the model (Close
// does).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.qmu.Lock()
	if !e.closed {
		e.closed = true
		close(e.queue)
	}
	e.qmu.Unlock()
	select {
	case <-e.workerDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the model worker: %w", ctx.Err())
	}
}

// Closed reports whether Shutdown (or Close) was called.
func (e *Engine) Closed() bool {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	return e.closed
}

// free drops every adapter (each attached in turn, so that its layers are
// freed) and the base model. Only with the worker stopped.
func (e *Engine) free() {
	e.freeOnce.Do(func() {
		for _, sv := range e.models {
			if sv.adapter == nil {
				continue
			}
			if err := e.activate(sv); err == nil {
				sv.adapter.Drop()
			}
			e.active = nil
		}
		if e.model != nil {
			e.model.Drop()
			e.model = nil
		}
	})
}

// Default is the name of the adapter answering queries that name none (""
// when the base model answers alone).
func (e *Engine) Default() string {
	e.amu.RLock()
	defer e.amu.RUnlock()
	return e.models[0].Name
}

// BaseDir is the base model's directory.
func (e *Engine) BaseDir() string { return e.baseDir }

// Device is the device the model runs on, as ParseDevice reads it ("cpu",
// "cuda:0").
func (e *Engine) Device() string { return torch.DeviceName(e.dev) }

// Merged reports whether the adapter was folded into the weights.
func (e *Engine) Merged() bool { return e.opt.Merge }

// Fused reports whether the worker fuses the queries of a cycle.
func (e *Engine) Fused() bool { return e.opt.Fuse }

// MaxTopK is the most answers a query may ask for (the n-best size).
func (e *Engine) MaxTopK() int { return e.opt.Post.NBestSize }

// Queue reports the queries waiting for the worker and the queue's size.
func (e *Engine) Queue() (pending, capacity int) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	return e.pending, e.opt.Queue
}

// Windows are the windows queries for adapter name ("" = the default) are
// cut into.
func (e *Engine) Windows(name string) (data.FeatureOptions, error) {
	sv, err := e.lookup(name)
	if err != nil {
		return data.FeatureOptions{}, err
	}
	return sv.feat, nil
}

// Version2 reports whether the answers of adapter name ("" = the default)
// are post-processed as SQuAD 2.0 (version_2_with_negative: it may answer
// ""), and the null_score_diff_threshold it abstains by.
func (e *Engine) Version2(name string) (on bool, threshold float64, err error) {
	sv, err := e.lookup(name)
	if err != nil {
		return false, 0, err
	}
	return sv.post.Version2WithNegative, sv.post.NullScoreDiffThreshold, nil
}

// AdapterInfo describes a loaded adapter.
type AdapterInfo struct {
	Name          string
	Dir           string
	R             int
	LoraAlpha     float64
	TargetModules []string
	Default       bool
	Merged        bool
	MaxSeqLength  int
	DocStride     int
	// Version2WithNegative: its answers are post-processed as SQuAD 2.0,
	// abstaining ("") by NullScoreDiffThreshold (see Version2).
	Version2WithNegative   bool
	NullScoreDiffThreshold float64
}

func (e *Engine) info(sv *served, isDefault bool) AdapterInfo {
	c := sv.adapter.Config
	return AdapterInfo{Name: sv.Name, Dir: sv.Dir, R: c.R, LoraAlpha: c.LoraAlpha, TargetModules: c.TargetModules,
		Default: isDefault, Merged: e.opt.Merge, MaxSeqLength: sv.feat.MaxSeqLength, DocStride: sv.feat.DocStride,
		Version2WithNegative: sv.post.Version2WithNegative, NullScoreDiffThreshold: sv.post.NullScoreDiffThreshold}
}

// Adapters lists the loaded adapters in the order loaded (none when the
// base answers alone).
func (e *Engine) Adapters() []AdapterInfo {
	e.amu.RLock()
	defer e.amu.RUnlock()
	out := []AdapterInfo{}
	for i, sv := range e.models {
		if sv.adapter != nil {
			out = append(out, e.info(sv, i == 0))
		}
	}
	return out
}

// lookup finds the adapter called name ("" = the default).
func (e *Engine) lookup(name string) (*served, error) {
	e.amu.RLock()
	defer e.amu.RUnlock()
	if name == "" {
		return e.models[0], nil
	}
	if sv := e.byName[name]; sv != nil {
		return sv, nil
	}
	if len(e.byName) == 0 {
		return nil, fmt.Errorf("%w %q: this engine answers with its base model only", ErrUnknownAdapter, name)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownAdapter, name)
}

func init() {
	faults.OnWorker = func(e any, fn func(m *bert.Model) error) error {
		eng := e.(*Engine)
		return eng.onWorker(context.Background(), func() error { return fn(eng.model) })
	}
}
