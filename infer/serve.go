package infer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/peft"
)

// The server's endpoints.
const (
	pathAnswer   = "/v1/answer"
	pathBatch    = "/v1/answer/batch"
	pathAdapters = "/v1/adapters"
	pathHealth   = "/healthz"
	pathMetrics  = "/metrics"
)

// NamedAdapter is an adapter directory served under a name.
type NamedAdapter struct {
	Name, Dir string
}

// ServerOptions say what a Server loads and what it accepts. Options.Adapter
// is ignored: the adapters are Adapters.
type ServerOptions struct {
	Options
	Adapters []NamedAdapter
	// MaxBatch is the most queries one batching cycle of the model worker
	// takes; BatchWindow how long it waits for more after the first.
	MaxBatch    int
	BatchWindow time.Duration
	// Fuse runs the windows of all queries of one adapter in a cycle through
	// one forward (fewer, larger forwards). Without it each query runs as
	// `loraqa predict` runs it, so the answers are bit-identical to predict's;
	// with it scores may differ in the last bits of float32.
	Fuse          bool
	MaxBody       int64         // bytes of a request body
	MaxContext    int           // characters (code points) of a context
	MaxBatchItems int           // requests in one POST /v1/answer/batch
	Queue         int           // queries waiting for the worker before 429
	Timeout       time.Duration // per request, queueing included
	Threads       int           // LibTorch intra-op threads of the worker; 0 leaves the default

	// AuthTokens, when any, are the bearer tokens the answer, adapter-list
	// and v2 model routes need; AdminTokens those that load and unload
	// adapters (none: adapters cannot be changed). Admin tokens answer too.
	AuthTokens, AdminTokens []string
	MetricsAuth             bool // /metrics needs a token as the answer routes do
	// AdapterRoot is the directory adapters may be loaded from at run time
	// (POST /v1/adapters); "" turns loading off.
	AdapterRoot string
	TLS         *tls.Config  // Run serves HTTPS with it when set
	Logger      *slog.Logger // request logs; nil: none

	cycleHook func() // tests: called by the worker before each cycle
}

// DefaultServerOptions: predict's windows (384/128), 32 queries per cycle
// gathered for at most 5 ms, 1 MiB bodies, 100,000-character contexts, 64
// requests per batch, 256 queued queries, 30 s per request.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		Options: DefaultOptions(), MaxBatch: 32, BatchWindow: 5 * time.Millisecond,
		MaxBody: 1 << 20, MaxContext: 100_000, MaxBatchItems: 64, Queue: 256, Timeout: 30 * time.Second,
	}
}

var adapterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (o *ServerOptions) check() error {
	switch {
	case o.MaxBatch < 1 || o.Queue < 1 || o.MaxBatchItems < 1 || o.MaxContext < 1 || o.MaxBody < 1 || o.BatchSize < 1:
		return fmt.Errorf("serve: max batch %d, queue %d, batch items %d, max context %d, max body %d and forward batch %d must all be positive",
			o.MaxBatch, o.Queue, o.MaxBatchItems, o.MaxContext, o.MaxBody, o.BatchSize)
	case o.BatchWindow < 0 || o.Timeout <= 0:
		return fmt.Errorf("serve: batch window %v must not be negative and timeout %v must be positive", o.BatchWindow, o.Timeout)
	case o.Merge && len(o.Adapters) != 1:
		return fmt.Errorf("serve: --merge folds one adapter into the weights; %d adapters given", len(o.Adapters))
	}
	seen := map[string]bool{}
	for _, a := range o.Adapters {
		if !adapterName.MatchString(a.Name) {
			return fmt.Errorf("serve: adapter name %q: use letters, digits, '.', '_' and '-' (at most 64)", a.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("serve: adapter name %q is given twice", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

// served is one way of answering: an adapter (nil: the base model alone)
// and the tokenizer that goes with it.
type served struct {
	Name    string
	Dir     string
	adapter *peft.Adapter
	tok     *data.Tokenizer
	gone    bool // unloaded; the worker's alone
}

// Server answers questions over HTTP with one base model and any number of
// adapters over it. Queries are queued for one model worker, which takes them
// in batches and runs them adapter by adapter.
type Server struct {
	opt     ServerOptions
	lim     limits
	model   *bert.Model
	baseDir string
	amu     sync.RWMutex // guards models and byName (adapters change at run time)
	models  []*served    // in the order loaded; models[0] is the default
	byName  map[string]*served
	active  *served // attached to the model; the worker's alone after loading
	metrics *metrics
	log     *slog.Logger
	users   tokenSet
	admins  tokenSet
	adminMu sync.Mutex // one adapter change at a time: at most one control job queued

	qmu     sync.Mutex
	queue   chan *job
	pending int
	closed  bool

	inFlight   atomic.Int64
	workerDone chan struct{}
	freeOnce   sync.Once
}

// LoadServer loads the base model (opt.Model, else the first adapter's
// base_model_name_or_path) once, every adapter over it, and starts the model
// worker. Close frees them.
func LoadServer(ctx context.Context, opt ServerOptions) (*Server, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.AdapterRoot != "" {
		root, err := filepath.Abs(opt.AdapterRoot)
		if err == nil {
			root, err = filepath.EvalSymlinks(root)
		}
		if err != nil {
			return nil, fmt.Errorf("serve: --adapter-root: %w", err)
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("serve: --adapter-root %s is not a directory", opt.AdapterRoot)
		}
		opt.AdapterRoot = root
	}
	ref := opt.Model
	if ref == "" {
		if len(opt.Adapters) == 0 {
			return nil, fmt.Errorf("serve: give a model (--model) or an adapter (--adapter NAME=DIR)")
		}
		cfg, err := peft.ReadConfig(opt.Adapters[0].Dir)
		if err != nil {
			return nil, fmt.Errorf("serve: adapter %s: %w", opt.Adapters[0].Name, err)
		}
		if cfg.BaseModel == "" {
			return nil, fmt.Errorf("serve: adapter %s: base_model_name_or_path is empty; name the base model with --model", opt.Adapters[0].Name)
		}
		ref = cfg.BaseModel
	}
	dir, err := hub.Resolve(ctx, ref, opt.Hub)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	m, err := bert.Load(dir, bert.LoadOptions{Device: opt.Device, DType: opt.DType, Logf: opt.Logf})
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Server{
		opt: opt, model: m, baseDir: dir, byName: map[string]*served{}, metrics: newMetrics(),
		lim:   limits{maxContext: opt.MaxContext, maxBatchItems: opt.MaxBatchItems, maxTopK: opt.Post.NBestSize},
		queue: make(chan *job, opt.Queue+1), workerDone: make(chan struct{}), // +1: a control job
		log: opt.Logger, users: newTokenSet(opt.AuthTokens), admins: newTokenSet(opt.AdminTokens),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.loadAdapters(); err != nil {
		close(s.workerDone)
		s.free()
		return nil, err
	}
	go s.work()
	return s, nil
}

func (s *Server) loadAdapters() error {
	var baseTok *data.Tokenizer
	tokenizer := func(adapterDir string) (*data.Tokenizer, error) {
		if adapterDir != "" && hasTokenizer(adapterDir) {
			return data.LoadTokenizer(adapterDir)
		}
		if baseTok != nil {
			return baseTok, nil
		}
		var err error
		baseTok, err = data.LoadTokenizer(s.baseDir)
		return baseTok, err
	}
	checked := func(adapterDir string) (*data.Tokenizer, error) {
		tok, err := tokenizer(adapterDir)
		if err != nil {
			return nil, err
		}
		if err := s.model.Config.CheckInputs(s.opt.Features.MaxSeqLength, tok.VocabSize()); err != nil {
			return nil, fmt.Errorf("%s: %w", s.baseDir, err)
		}
		return tok, nil
	}
	if len(s.opt.Adapters) == 0 {
		tok, err := checked("")
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		s.models = []*served{{Dir: s.baseDir, tok: tok}}
	}
	shared := len(s.opt.Adapters) > 1
	for _, na := range s.opt.Adapters {
		if shared {
			cfg, err := peft.ReadConfig(na.Dir)
			if err != nil {
				return fmt.Errorf("serve: adapter %s: %w", na.Name, err)
			}
			if cfg.Bias != "none" {
				return fmt.Errorf("serve: adapter %s trains the base model's biases (bias %q), so it cannot share the base with other adapters: serve it alone", na.Name, cfg.Bias)
			}
		}
		a, err := peft.Load(na.Dir, s.model)
		if err != nil {
			return fmt.Errorf("serve: adapter %s (%s): %w", na.Name, na.Dir, err)
		}
		sv := &served{Name: na.Name, Dir: na.Dir, adapter: a}
		s.models = append(s.models, sv)
		s.byName[na.Name] = sv
		s.active = sv
		if shared {
			if err := a.Detach(); err != nil {
				return fmt.Errorf("serve: adapter %s: %w", na.Name, err)
			}
			s.active = nil
		}
		if s.opt.Merge {
			if err := a.Merge(); err != nil {
				return fmt.Errorf("serve: adapter %s: %w", na.Name, err)
			}
		}
		if sv.tok, err = checked(na.Dir); err != nil {
			return fmt.Errorf("serve: adapter %s: %w", na.Name, err)
		}
	}
	if s.active == nil && len(s.opt.Adapters) == 0 {
		s.active = s.models[0]
	}
	// A one-word query checks the window options before any request does.
	for _, sv := range s.models {
		if _, err := s.featurize(sv, Query{Question: "what", Context: "this"}); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// featurize cuts a query into windows exactly as Predictor.Predict does for
// a single query.
func (s *Server) featurize(sv *served, q Query) ([]data.Feature, error) {
	fo := s.opt.Features
	fo.NegativeFraction = 1
	feats, _, err := data.Featurize(sv.tok, []data.Example{example(q)}, fo)
	if err != nil {
		return nil, err
	}
	if len(feats) == 0 {
		return nil, fmt.Errorf("no window could be made")
	}
	return feats, nil
}

// example is a query as Predict makes it for the first of its queries.
func example(q Query) data.Example {
	return data.Example{ID: "0", Question: q.Question, Context: q.Context}
}

// Shutdown stops taking queries and waits until the worker has answered
// those already queued (or ctx ends). The HTTP server in front should be
// shut down first, so that no request is left waiting.
func (s *Server) Shutdown(ctx context.Context) error {
	s.qmu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.qmu.Unlock()
	select {
	case <-s.workerDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serve: waiting for the model worker: %w", ctx.Err())
	}
}

// Close shuts the server down (waiting for the worker) and frees the model
// and adapters.
func (s *Server) Close() error {
	err := s.Shutdown(context.Background())
	s.free()
	return err
}

// free drops every adapter (each attached in turn, so that its layers are
// freed) and the base model. Only with the worker stopped.
func (s *Server) free() {
	s.freeOnce.Do(func() {
		for _, sv := range s.models {
			if sv.adapter == nil {
				continue
			}
			if err := s.activate(sv); err == nil {
				sv.adapter.Drop()
			}
			s.active = nil
		}
		if s.model != nil {
			s.model.Drop()
			s.model = nil
		}
	})
}

// Run serves HTTP on ln until ctx ends, then shuts down gracefully: the
// listener closes, requests in flight are answered (waiting at most the
// request timeout and 5 s more) and the worker drains its queue. It does
// not free the models (Close does).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.opt.Timeout,
		WriteTimeout:      s.opt.Timeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	if s.opt.TLS != nil {
		ln = tls.NewListener(ln, s.opt.TLS)
	}
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logf("serve: shutting down, finishing the requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), s.opt.Timeout+5*time.Second)
	defer cancel()
	errHTTP := hs.Shutdown(sctx)
	errWorker := s.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		errHTTP = errors.Join(errHTTP, err)
	}
	if errHTTP != nil {
		errHTTP = fmt.Errorf("serve: %w", errHTTP)
	}
	return errors.Join(errHTTP, errWorker)
}

func (s *Server) logf(format string, a ...any) {
	if s.opt.Logf != nil {
		s.opt.Logf(format, a...)
	}
}

// Default is the name of the adapter answering requests that name none
// ("" when the base model answers alone).
func (s *Server) Default() string {
	s.amu.RLock()
	defer s.amu.RUnlock()
	return s.models[0].Name
}
