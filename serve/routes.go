package serve

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// access is who may call a route.
type access int

const (
	accessOpen    access = iota // anyone: health probes, the OpenAPI document
	accessUser                  // a bearer token from AuthTokens (or AdminTokens), when auth is on
	accessAdmin                 // a bearer token from AdminTokens: calls that change adapters
	accessMetrics               // open, or as accessUser with MetricsAuth
)

// route is one method on one path: pattern is an http.ServeMux path
// ("{name}" matches one segment, read with r.PathValue). The mux, the
// access checks and the OpenAPI document are all made from the table.
type route struct {
	method, pattern string
	access          access
	summary         string
	handle          func(s *Server, w *responseWriter, r *http.Request)
	// body and reply name the schemas (components/schemas of the OpenAPI
	// document) of the request body and of the OK reply; "" for none. ok is
	// the OK status (0: 200).
	body, reply string
	ok          int
}

// routes are every endpoint of the server (set in init, as the OpenAPI
// document's route refers to them).
var routes []route

func init() {
	routes = []route{
		{"POST", pathAnswer, accessUser, "Answer one question over a context", (*Server).routeAnswer, "AnswerRequest", "AnswerResponse", 0},
		{"POST", pathBatch, accessUser, "Answer several questions (a JSON array of answer requests)", (*Server).routeBatch, "BatchRequest", "BatchResponse", 0},
		{"GET", pathAdapters, accessUser, "List the served adapters with their config", (*Server).routeListAdapters, "", "AdapterList", 0},
		{"POST", pathAdapters, accessAdmin, "Load an adapter from a directory under --adapter-root", (*Server).routeLoadAdapter, "LoadAdapterRequest", "AdapterInfo", http.StatusCreated},
		{"DELETE", pathAdapters + "/{name}", accessAdmin, "Unload an adapter (queued requests for it are answered first)", (*Server).routeUnloadAdapter, "", "Unloaded", 0},
		{"GET", pathHealth, accessOpen, "Liveness and readiness (503 while draining)", (*Server).routeHealth, "", "Health", 0},
		{"GET", pathMetrics, accessMetrics, "Prometheus metrics (text format 0.0.4)", (*Server).routeMetrics, "", "", 0},
		{"GET", pathOpenAPI, accessOpen, "This API as an OpenAPI 3 document", (*Server).routeOpenAPI, "", "", 0},
		{"GET", "/v2", accessOpen, "Open Inference Protocol v2: server metadata", (*Server).routeV2Server, "", "V2ServerMetadata", 0},
		{"GET", "/v2/health/live", accessOpen, "Open Inference Protocol v2: server live", (*Server).routeV2Live, "", "V2Live", 0},
		{"GET", "/v2/health/ready", accessOpen, "Open Inference Protocol v2: server ready (503 while draining)", (*Server).routeV2Ready, "", "V2Ready", 0},
		{"GET", pathV2Model, accessUser, "Open Inference Protocol v2: model metadata (a model is an adapter)", (*Server).routeV2Metadata, "", "V2ModelMetadata", 0},
		{"GET", pathV2Model + pathV2Version, accessUser, "Open Inference Protocol v2: model metadata of a version (version 1)", (*Server).routeV2Metadata, "", "V2ModelMetadata", 0},
		{"GET", pathV2Model + "/ready", accessUser, "Open Inference Protocol v2: model ready (503 while draining)", (*Server).routeV2ModelReady, "", "V2ModelReady", 0},
		{"GET", pathV2Model + pathV2Version + "/ready", accessUser, "Open Inference Protocol v2: model version ready (503 while draining)", (*Server).routeV2ModelReady, "", "V2ModelReady", 0},
		{"POST", pathV2Model + "/infer", accessUser, "Open Inference Protocol v2: answer questions (BYTES inputs question and context; binary tensor data extension)", (*Server).routeV2Infer, "V2InferRequest", "V2InferResponse", 0},
		{"POST", pathV2Model + pathV2Version + "/infer", accessUser, "Open Inference Protocol v2: answer questions with a model version (version 1)", (*Server).routeV2Infer, "V2InferRequest", "V2InferResponse", 0},
	}
}

const (
	pathOpenAPI   = "/openapi.json"
	pathV2Model   = "/v2/models/{model}"
	pathV2Version = "/versions/{version}"
)

// newMux registers every route on an http.ServeMux, each behind its access
// check and labelled (for the logs and metrics) with its pattern.
func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			rec := w.(*responseWriter)
			rec.route = rt.pattern
			if e := s.authorize(r, rt.access); e != nil {
				if e.status == http.StatusUnauthorized {
					rec.Header().Set("WWW-Authenticate", `Bearer realm="loraqa"`)
				}
				writeError(rec, e)
				return
			}
			rt.handle(s, rec, r)
		})
	}
	return mux
}

// responseWriter records the status and what the log line names.
type responseWriter struct {
	http.ResponseWriter
	code    int
	route   string // the route's pattern; "other" when none matched
	adapter string
}

func (r *responseWriter) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// requestID is the client's X-Request-Id when it is a sensible one, else a
// new random id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); requestIDPattern.MatchString(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ServeHTTP routes the API through its http.ServeMux: 404 for an unknown
// path, 405 (with Allow) for a wrong method, both with a JSON error body;
// 401/403 without the token a route needs. Every request is logged with its
// id (X-Request-Id, echoed back), route, adapter, status and latency.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	rec := &responseWriter{ResponseWriter: w, code: http.StatusOK, route: "other"}
	defer func() {
		d := time.Since(start)
		s.metrics.request(rec.route, rec.code, d)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", rec.route), slog.String("adapter", rec.adapter), slog.Int("status", rec.code),
			slog.Float64("latency_ms", float64(d.Microseconds())/1000), slog.String("remote", r.RemoteAddr))
	}()
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(rec, r)
		return
	}
	// No route: the mux's own answer (404, 405 with Allow, or a redirect
	// to the cleaned path), with its text body made a JSON error.
	mr := &muxReply{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(mr, r)
	switch code := mr.code; code {
	case http.StatusMethodNotAllowed:
		allow := mr.Header().Get("Allow")
		rec.Header().Set("Allow", allow)
		writeError(rec, errorf(code, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	case http.StatusNotFound:
		if ext := tritonExtension(r.URL.Path); ext != "" {
			writeError(rec, errorf(code, "not supported: Triton's %s extension (GET /v2 lists the extensions served: %s)",
				ext, strings.Join(v2Extensions, ", ")))
			return
		}
		writeError(rec, errorf(code, "no endpoint %s (GET %s lists them: %s, %s, %s, /v2/models/{model}/infer, ...)",
			r.URL.Path, pathOpenAPI, pathAnswer, pathBatch, pathAdapters))
	default:
		if loc := mr.Header().Get("Location"); loc != "" {
			rec.Header().Set("Location", loc)
		}
		writeError(rec, errorf(code, "%s", strings.TrimSpace(mr.body.String())))
	}
}

// muxReply keeps what the mux answers when no route matches.
type muxReply struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (m *muxReply) Header() http.Header         { return m.header }
func (m *muxReply) WriteHeader(code int)        { m.code = code }
func (m *muxReply) Write(b []byte) (int, error) { return m.body.Write(b) }

// tritonExtensions are the paths of Triton's protocol extensions that
// tritonclient calls and this server does not serve, by extension.
var tritonExtensions = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`^/v2/models/[^/]+(/versions/[^/]+)?/config$`), "model configuration"},
	{regexp.MustCompile(`^/v2/models(/[^/]+(/versions/[^/]+)?)?/stats$`), "statistics"},
	{regexp.MustCompile(`^/v2/repository(/|$)`), "model repository"},
	{regexp.MustCompile(`^/v2/(systemsharedmemory|cudasharedmemory)(/|$)`), "shared-memory"},
	{regexp.MustCompile(`^/v2(/models/[^/]+)?/trace/setting$`), "trace"},
	{regexp.MustCompile(`^/v2/logging$`), "logging"},
	{regexp.MustCompile(`^/v2/models/[^/]+(/versions/[^/]+)?/generate(_stream)?$`), "generate"},
}

// tritonExtension names the Triton extension a path belongs to ("": none).
func tritonExtension(path string) string {
	for _, e := range tritonExtensions {
		if e.re.MatchString(path) {
			return e.name
		}
	}
	return ""
}
