// Package serve is loraqa's HTTP API over an engine (package engine): POST
// /v1/answer and /v1/answer/batch, the adapter list and, with admin tokens,
// loading and unloading adapters at run time, /healthz, Prometheus /metrics,
// the Open Inference Protocol v2 routes, and /openapi.json. Bearer-token auth,
// request limits, timeouts, JSON request logs and graceful shutdown are this
// package's; loading models, batching and answering are the engine's, whose
// errors (engine.ErrUnknownAdapter, ErrBusy, ...) become HTTP statuses here.
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

// ServerOptions say what a Server loads (the engine's options) and what it
// accepts over HTTP.
type ServerOptions struct {
	engine.Options
	MaxBody       int64         // bytes of a request body
	MaxContext    int           // characters (code points) of a context
	MaxBatchItems int           // requests in one POST /v1/answer/batch
	Timeout       time.Duration // per request, queueing included

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
}

// DefaultServerOptions: the engine's defaults (the adapter's windows, 32
// queries per cycle gathered for at most 5 ms, 256 queued queries), 1 MiB
// bodies, 100,000-character contexts, 64 requests per batch, 30 s per
// request.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		Options: engine.DefaultOptions(),
		MaxBody: 1 << 20, MaxContext: 100_000, MaxBatchItems: 64, Timeout: 30 * time.Second,
	}
}

func (o *ServerOptions) check() error {
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
	Close()
	BaseDir() string
	Device() string
	Fused() bool
	Merged() bool
}

// Server answers questions over HTTP with an engine: one base model and any
// number of adapters over it, queries queued for its model worker.
type Server struct {
	opt     ServerOptions
	lim     limits
	eng     backend
	engine  *engine.Engine // eng, when it is one
	metrics *metrics
	log     *slog.Logger
	users   tokenSet
	admins  tokenSet

	inFlight atomic.Int64
}

// LoadServer loads the engine (the base model, opt.Model, else the first
// adapter's base_model_name_or_path, once, every adapter over it, and its
// model worker) with the runtime settings for serving (engine.Tune). Close
// frees them.
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
	m := newMetrics()
	engine.Tune(true, opt.Logf)
	eo := opt.Options
	if eo.Observer == nil {
		eo.Observer = m
	}
	eng, err := engine.Load(ctx, eo)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := newServer(opt, eng, m)
	s.engine = eng
	return s, nil
}

func newServer(opt ServerOptions, eng backend, m *metrics) *Server {
	s := &Server{
		opt: opt, eng: eng, metrics: m,
		lim: limits{maxContext: opt.MaxContext, maxBatchItems: opt.MaxBatchItems, maxTopK: opt.Post.NBestSize},
		log: opt.Logger, users: newTokenSet(opt.AuthTokens), admins: newTokenSet(opt.AdminTokens),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
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

// Close shuts the server down (waiting for the worker) and frees the model
// and adapters.
func (s *Server) Close() error {
	err := s.Shutdown(context.Background())
	s.eng.Close()
	return err
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
func (s *Server) Default() string { return s.eng.Default() }
