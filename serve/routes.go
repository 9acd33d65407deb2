package serve

import (
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

// route is one method on one path pattern; "{name}" matches one segment.
type route struct {
	method, pattern string
	access          access
	summary         string
	handle          func(s *Server, w *responseWriter, r *http.Request, params map[string]string)
}

// routes are every endpoint of the server (the OpenAPI document is made
// from them; set in init, as the document's route refers to them).
var routes []route

func init() {
	routes = []route{
		{"POST", pathAnswer, accessUser, "Answer one question over a context", (*Server).routeAnswer},
		{"POST", pathBatch, accessUser, "Answer several questions (a JSON array of answer requests)", (*Server).routeBatch},
		{"GET", pathAdapters, accessUser, "List the served adapters with their config", (*Server).routeListAdapters},
		{"POST", pathAdapters, accessAdmin, "Load an adapter from a directory under --adapter-root", (*Server).routeLoadAdapter},
		{"DELETE", pathAdapters + "/{name}", accessAdmin, "Unload an adapter (queued requests for it are answered first)", (*Server).routeUnloadAdapter},
		{"GET", pathHealth, accessOpen, "Liveness and readiness (503 while draining)", (*Server).routeHealth},
		{"GET", pathMetrics, accessMetrics, "Prometheus metrics (text format 0.0.4)", (*Server).routeMetrics},
		{"GET", pathOpenAPI, accessOpen, "This API as an OpenAPI 3 document", (*Server).routeOpenAPI},
		{"GET", "/v2", accessOpen, "Open Inference Protocol v2: server metadata", (*Server).routeV2Server},
		{"GET", "/v2/health/live", accessOpen, "Open Inference Protocol v2: server live", (*Server).routeV2Live},
		{"GET", "/v2/health/ready", accessOpen, "Open Inference Protocol v2: server ready", (*Server).routeV2Ready},
		{"GET", "/v2/models/{model}", accessUser, "Open Inference Protocol v2: model metadata (a model is an adapter)", (*Server).routeV2Metadata},
		{"GET", "/v2/models/{model}/ready", accessUser, "Open Inference Protocol v2: model ready", (*Server).routeV2ModelReady},
		{"POST", "/v2/models/{model}/infer", accessUser, "Open Inference Protocol v2: answer questions (BYTES inputs question and context)", (*Server).routeV2Infer},
	}
}

const pathOpenAPI = "/openapi.json"

// match reports whether path fits pattern, and the values of its {params}.
func match(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}

// responseWriter records the status and what the log line names.
type responseWriter struct {
	http.ResponseWriter
	code    int
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

// ServeHTTP routes the API: 404 for an unknown path, 405 (with Allow) for a
// wrong method, 401/403 without the token a route needs. Every request is
// logged with its id (X-Request-Id, echoed back), adapter, status and latency.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	rec := &responseWriter{ResponseWriter: w, code: http.StatusOK}
	label := "other"
	defer func() {
		d := time.Since(start)
		s.metrics.request(label, rec.code, d)
		if s.log == nil { // a Server made without LoadServer (tests)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", label), slog.String("adapter", rec.adapter), slog.Int("status", rec.code),
			slog.Float64("latency_ms", float64(d.Microseconds())/1000), slog.String("remote", r.RemoteAddr))
	}()
	var allow []string
	for _, rt := range routes {
		params, ok := match(rt.pattern, r.URL.Path)
		if !ok {
			continue
		}
		label = rt.pattern
		if r.Method == rt.method || (rt.method == http.MethodGet && r.Method == http.MethodHead) {
			if e := s.authorize(r, rt.access); e != nil {
				if e.status == http.StatusUnauthorized {
					rec.Header().Set("WWW-Authenticate", `Bearer realm="loraqa"`)
				}
				writeError(rec, e)
				return
			}
			rt.handle(s, rec, r, params)
			return
		}
		allow = append(allow, rt.method)
		if rt.method == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	if len(allow) > 0 {
		a := strings.Join(allow, ", ")
		rec.Header().Set("Allow", a)
		writeError(rec, errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, a))
		return
	}
	writeError(rec, errorf(http.StatusNotFound, "no endpoint %s (GET %s lists them: %s, %s, %s, /v2/models/{model}/infer, ...)",
		r.URL.Path, pathOpenAPI, pathAnswer, pathBatch, pathAdapters))
}
