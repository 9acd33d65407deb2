package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/loraqa/loraqa/engine"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests || e.retryAfter {
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

// infer reads a request's body, parses it into queries with parse and
// answers them within the server's time limit: what every answering route
// (v1 and v2) does between its own parsing and its own reply.
func (s *Server) infer(w *responseWriter, r *http.Request, parse func(body []byte) ([]parsed, *apiError)) ([]AnswerResponse, *apiError) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	body, e := s.readBody(w, r)
	if e != nil {
		return nil, e
	}
	ps, e := parse(body)
	if e != nil {
		return nil, e
	}
	return s.answer(ctx, ps)
}

func (s *Server) routeAnswer(w *responseWriter, r *http.Request) {
	s.handleAnswer(w, r, false)
}

func (s *Server) routeBatch(w *responseWriter, r *http.Request) {
	s.handleAnswer(w, r, true)
}

func (s *Server) handleAnswer(w *responseWriter, r *http.Request, batch bool) {
	start := time.Now()
	res, e := s.infer(w, r, func(body []byte) ([]parsed, *apiError) {
		if batch {
			return parseBatch(body, s.lim)
		}
		p, e := parseAnswer(body, s.lim)
		return []parsed{p}, e
	})
	if e != nil {
		writeError(w, e)
		return
	}
	took := float64(time.Since(start).Microseconds()) / 1000
	names := map[string]bool{}
	for i := range res {
		res[i].TookMS = took
		if !names[res[i].Adapter] {
			names[res[i].Adapter] = true
			w.adapter = strings.TrimPrefix(w.adapter+","+res[i].Adapter, ",")
		}
	}
	if batch {
		writeJSON(w, http.StatusOK, BatchResponse{Results: res, TookMS: took})
		return
	}
	writeJSON(w, http.StatusOK, res[0])
}

// adapterInfo is how GET /v1/adapters shows an adapter.
type adapterInfo struct {
	Name          string   `json:"name"`
	Dir           string   `json:"dir"`
	R             int      `json:"r"`
	LoraAlpha     float64  `json:"lora_alpha"`
	TargetModules []string `json:"target_modules,omitempty"`
	Default       bool     `json:"default"`
	Merged        bool     `json:"merged"`
	// SQuAD2 is the adapter's SQuAD 2.0 setting when it answers as SQuAD
	// 2.0 (it may abstain); absent otherwise.
	SQuAD2 *squad2Info `json:"squad_v2,omitempty"`
}

// squad2Info is an adapter's SQuAD 2.0 setting: it answers "" when the null
// score beats the best span's by more than the threshold.
type squad2Info struct {
	NullScoreDiffThreshold float64 `json:"null_score_diff_threshold"`
}

func toAdapterInfo(a engine.AdapterInfo) adapterInfo {
	info := adapterInfo{Name: a.Name, Dir: a.Dir, R: a.R, LoraAlpha: a.LoraAlpha,
		TargetModules: a.TargetModules, Default: a.Default, Merged: a.Merged}
	if a.Version2WithNegative {
		info.SQuAD2 = &squad2Info{NullScoreDiffThreshold: a.NullScoreDiffThreshold}
	}
	return info
}

func (s *Server) routeListAdapters(w *responseWriter, _ *http.Request) {
	out := struct {
		Base     string        `json:"base"`
		Device   string        `json:"device"`
		Default  string        `json:"default"`
		Fused    bool          `json:"fused"`
		Adapters []adapterInfo `json:"adapters"`
	}{Base: s.eng.BaseDir(), Device: s.eng.Device(), Default: s.Default(), Fused: s.eng.Fused(), Adapters: []adapterInfo{}}
	for _, a := range s.eng.Adapters() {
		out.Adapters = append(out.Adapters, toAdapterInfo(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) routeHealth(w *responseWriter, _ *http.Request) {
	if s.draining() {
		writeError(w, errDraining())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) draining() bool { return s.eng.Closed() }

func (s *Server) routeMetrics(w *responseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w, s.gauges())
}

func (s *Server) gauges() gauges {
	depth, capacity := s.eng.Queue()
	return gauges{queueDepth: depth, queueCap: capacity, inFlight: int(s.inFlight.Load()), liveTensors: engine.LiveTensors()}
}
