// Package serve is loraqa's HTTP API over an engine (package engine) that
// the caller built and gives to New: POST /v1/answer and /v1/answer/batch,
// the adapter list and, with admin tokens, loading and unloading adapters at
// run time, /healthz, Prometheus /metrics, the Open Inference Protocol v2
// routes (versioned, with the binary tensor data extension), and
// /openapi.json. One route table makes the http.ServeMux patterns, the access
// levels and the OpenAPI document. Bearer-token auth, request limits,
// timeouts, JSON request logs and graceful shutdown are this package's;
// loading models, batching and answering are the engine's, whose errors
// (engine.ErrUnknownAdapter, ErrBusy, ...) become HTTP statuses here. It
// reaches the model only through package engine.
package serve

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
	"sync/atomic"
	"time"

	"github.com/loraqa/loraqa/engine"
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
type NamedAdapter = engine.NamedAdapter

// Query is one question over one context.
type Query = engine.Query

// Options say what a Server accepts over HTTP. The engine it answers with
// is built by the caller (engine.Load) and given to New.
type Options struct {
	MaxBody       int64         // bytes of a request body
	MaxContext    int           // characters (code points) of a context
	MaxBatchItems int           // requests in one POST /v1/answer/batch, questions in one v2 infer
	Timeout       time.Duration // per request, queueing included

	// AuthTokens, when any, are the bearer tokens the answer, adapter-list
	// and v2 model routes need; AdminTokens those that load and unload
	// adapters (none: adapters cannot be changed). Admin tokens answer too.
	AuthTokens, AdminTokens []string
	MetricsAuth             bool // /metrics needs a token as the answer routes do
	// AdapterRoot is the directory adapters may be loaded from at run time
	// (POST /v1/adapters); "" turns loading off.
	AdapterRoot string
	TLS         *tls.Config                   // Run serves HTTPS with it when set
	Logger      *slog.Logger                  // request logs; nil: none
	Logf        func(format string, a ...any) // notices (shutdown); nil: none
	// Metrics are the counters GET /metrics shows. Give the same Metrics to
	// the engine as its engine.Options.Observer to count the model worker's
	// cycles too; nil: New makes its own (HTTP counters only).
	Metrics *Metrics
}

// DefaultOptions: 1 MiB bodies, 100,000-character contexts, 64 requests
// per batch, 30 s per request.
func DefaultOptions() Options {
	return Options{MaxBody: 1 << 20, MaxContext: 100_000, MaxBatchItems: 64, Timeout: 30 * time.Second}
}

func (o *Options) check() error {
	switch {
	case o.MaxBatchItems < 1 || o.MaxContext < 1 || o.MaxBody < 1:
		return fmt.Errorf("serve: batch items %d, max context %d and max body %d must all be positive",
			o.MaxBatchItems, o.MaxContext, o.MaxBody)
	case o.Timeout <= 0:
		return fmt.Errorf("serve: timeout %v must be positive", o.Timeout)
	}
	return nil
}

// backend is what the server needs of an engine (*engine.Engine; the fuzz
// test's stand-in has no model).
type backend interface {
	AnswerBatch(ctx context.Context, qs []engine.Query) ([]engine.Result, error)
	Default() string
	Adapters() []engine.AdapterInfo
	LoadAdapter(ctx context.Context, name, dir string) (engine.AdapterInfo, error)
	UnloadAdapter(ctx context.Context, name string) error
	Queue() (pending, capacity int)
	Closed() bool
	Shutdown(ctx context.Context) error
	BaseDir() string
	Device() string
	Fused() bool
	Merged() bool
	MaxTopK() int
}

// Server answers questions over HTTP with an engine: one base model and any
// number of adapters over it, queries queued for its model worker.
type Server struct {
	opt     Options
	lim     limits
	eng     backend
	engine  *engine.Engine // eng, when it is one
	metrics *Metrics
	log     *slog.Logger
	users   tokenSet
	admins  tokenSet
	mux     *http.ServeMux

	inFlight atomic.Int64
}

// New makes a server that answers with e. The engine stays the caller's:
// Run drains its queue when it stops, and the caller closes it after.
// Load the engine with Observer set to opt.Metrics for the worker's
// metrics.
func New(e *engine.Engine, opt Options) (*Server, error) {
	if e == nil {
		return nil, errors.New("serve: New needs an engine (engine.Load)")
	}
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
	s := newServer(opt, e)
	s.engine = e
	return s, nil
}

func newServer(opt Options, eng backend) *Server {
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics()
	}
	s := &Server{
		opt: opt, eng: eng, metrics: opt.Metrics,
		lim: limits{maxContext: opt.MaxContext, maxBatchItems: opt.MaxBatchItems, maxTopK: eng.MaxTopK()},
		log: opt.Logger, users: newTokenSet(opt.AuthTokens), admins: newTokenSet(opt.AdminTokens),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux = s.newMux()
	return s
}

// Engine is the engine the server answers with.
func (s *Server) Engine() *engine.Engine { return s.engine }

// Shutdown stops taking queries and waits until the worker has answered
// those already queued (or ctx ends). The HTTP server in front should be
// shut down first, so that no request is left waiting.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.eng.Shutdown(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Run serves HTTP on ln until ctx ends, then shuts down gracefully: the
// listener closes, requests in flight are answered (waiting at most the
// request timeout and 5 s more) and the engine's worker drains its queue.
// It does not free the engine (its Close does).
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
func (s *Server) Default() string { return s.eng.Default() }
