package infer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/loraqa/loraqa/torch"
)

// ServeHTTP routes the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() { s.metrics.request(r.URL.Path, rec.code, time.Since(start)) }()
	post, get := []string{http.MethodPost}, []string{http.MethodGet, http.MethodHead}
	switch r.URL.Path {
	case pathAnswer:
		if allowed(rec, r, post) {
			s.handleAnswer(rec, r, start, false)
		}
	case pathBatch:
		if allowed(rec, r, post) {
			s.handleAnswer(rec, r, start, true)
		}
	case pathAdapters:
		if allowed(rec, r, get) {
			s.handleAdapters(rec)
		}
	case pathHealth:
		if allowed(rec, r, get) {
			s.handleHealth(rec)
		}
	case pathMetrics:
		if allowed(rec, r, get) {
			rec.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			s.metrics.write(rec, s.gauges())
		}
	default:
		writeError(rec, errorf(http.StatusNotFound, "no endpoint %s (see %s, %s, %s, %s, %s)", r.URL.Path, pathAnswer, pathBatch, pathAdapters, pathHealth, pathMetrics))
	}
}

func allowed(w http.ResponseWriter, r *http.Request, methods []string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	writeError(w, errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

// readBody reads at most MaxBody bytes of the request body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > s.opt.MaxBody {
		return nil, errorf(http.StatusRequestEntityTooLarge, "the body has %d bytes; the limit is %d", r.ContentLength, s.opt.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errorf(http.StatusRequestEntityTooLarge, "the body is larger than the limit of %d bytes", s.opt.MaxBody)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

func (s *Server) handleAnswer(w http.ResponseWriter, r *http.Request, start time.Time, batch bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	var ps []parsed
	if batch {
		ps, e = parseBatch(body, s.lim)
	} else {
		var p parsed
		p, e = parseAnswer(body, s.lim)
		ps = []parsed{p}
	}
	if e != nil {
		writeError(w, e)
		return
	}
	res, e := s.answer(ctx, ps)
	if e != nil {
		writeError(w, e)
		return
	}
	took := float64(time.Since(start).Microseconds()) / 1000
	for i := range res {
		res[i].TookMS = took
	}
	if batch {
		writeJSON(w, http.StatusOK, BatchResponse{Results: res, TookMS: took})
		return
	}
	writeJSON(w, http.StatusOK, res[0])
}

func (s *Server) handleAdapters(w http.ResponseWriter) {
	type adapterInfo struct {
		Name          string   `json:"name"`
		Dir           string   `json:"dir"`
		R             int      `json:"r"`
		LoraAlpha     float64  `json:"lora_alpha"`
		TargetModules []string `json:"target_modules,omitempty"`
		Default       bool     `json:"default"`
		Merged        bool     `json:"merged"`
	}
	out := struct {
		Base     string        `json:"base"`
		Device   string        `json:"device"`
		Default  string        `json:"default"`
		Fused    bool          `json:"fused"`
		Adapters []adapterInfo `json:"adapters"`
	}{Base: s.baseDir, Device: torch.DeviceName(s.opt.Device), Default: s.Default(), Fused: s.opt.Fuse, Adapters: []adapterInfo{}}
	for i, sv := range s.models {
		if sv.adapter == nil {
			continue
		}
		c := sv.adapter.Config
		out.Adapters = append(out.Adapters, adapterInfo{Name: sv.Name, Dir: sv.Dir, R: c.R, LoraAlpha: c.LoraAlpha,
			TargetModules: c.TargetModules, Default: i == 0, Merged: s.opt.Merge})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleHealth(w http.ResponseWriter) {
	s.qmu.Lock()
	closed := s.closed
	s.qmu.Unlock()
	if closed {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) gauges() gauges {
	s.qmu.Lock()
	depth := s.pending
	s.qmu.Unlock()
	return gauges{queueDepth: depth, queueCap: s.opt.Queue, inFlight: int(s.inFlight.Load()), liveTensors: torch.LiveTensors()}
}
