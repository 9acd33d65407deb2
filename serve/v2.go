package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// The Open Inference Protocol v2 (KServe, Triton) for extractive QA: a model
// is an adapter (a server without adapters has one model, "base"); inputs
// "question" and "context" are BYTES tensors of shape [N] (or [N, 1]) whose
// data are flat lists of strings; outputs are "answer" (BYTES), "score"
// (FP32), "start" and "end" (INT64, code-point offsets into the context),
// each of shape [N]: the best answer of each question, as /v1/answer gives it.

// V2Tensor is an input or output tensor of the v2 JSON protocol.
type V2Tensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// V2InferRequest is the body of POST /v2/models/{model}/infer.
type V2InferRequest struct {
	ID         string              `json:"id,omitempty"`
	Parameters json.RawMessage     `json:"parameters,omitempty"`
	Inputs     []V2Tensor          `json:"inputs"`
	Outputs    []V2RequestedOutput `json:"outputs,omitempty"`
}

// V2RequestedOutput names an output the client wants (none: all).
type V2RequestedOutput struct {
	Name       string          `json:"name"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// V2OutputTensor is an output of the infer response.
type V2OutputTensor struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"`
}

// V2InferResponse is the reply of POST /v2/models/{model}/infer.
type V2InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id"`
	Outputs      []V2OutputTensor `json:"outputs"`
}

type v2TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// v2Inputs and v2Outputs are the model metadata's tensors, in order.
var (
	v2Inputs  = []v2TensorMeta{{"question", "BYTES", []int64{-1}}, {"context", "BYTES", []int64{-1}}}
	v2Outputs = []v2TensorMeta{{"answer", "BYTES", []int64{-1}}, {"score", "FP32", []int64{-1}}, {"start", "INT64", []int64{-1}}, {"end", "INT64", []int64{-1}}}
)

const v2Platform = "loraqa_extractive_qa"

func (s *Server) routeV2Server(w *responseWriter, _ *http.Request, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "loraqa", "version": "1", "extensions": []string{}})
}

func (s *Server) routeV2Live(w *responseWriter, _ *http.Request, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Server) routeV2Ready(w *responseWriter, _ *http.Request, _ map[string]string) {
	if s.draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// v2Model finds the adapter a v2 model name stands for ("base": the base
// model alone, on a server without adapters). The name returned is what
// /v1 requests name ("" for the base).
func (s *Server) v2Model(name string) (string, *apiError) {
	as := s.eng.Adapters()
	for _, a := range as {
		if a.Name == name {
			return name, nil
		}
	}
	if name == "base" && len(as) == 0 {
		return "", nil
	}
	return "", errorf(http.StatusNotFound, "unknown model %q (GET %s lists the adapters, which are the models)", name, pathAdapters)
}

func (s *Server) routeV2Metadata(w *responseWriter, _ *http.Request, p map[string]string) {
	w.adapter = p["model"]
	if _, e := s.v2Model(p["model"]); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": p["model"], "versions": []string{"1"}, "platform": v2Platform,
		"inputs": v2Inputs, "outputs": v2Outputs,
	})
}

func (s *Server) routeV2ModelReady(w *responseWriter, _ *http.Request, p map[string]string) {
	w.adapter = p["model"]
	if _, e := s.v2Model(p["model"]); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": p["model"], "ready": !s.draining()})
}

func (s *Server) routeV2Infer(w *responseWriter, r *http.Request, p map[string]string) {
	w.adapter = p["model"]
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	adapter, e := s.v2Model(p["model"])
	if e != nil {
		writeError(w, e)
		return
	}
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req V2InferRequest
	if e := decodeStrict(body, &req); e != nil {
		writeError(w, e)
		return
	}
	ps, want, e := parseV2(req, adapter, s.lim)
	if e != nil {
		writeError(w, e)
		return
	}
	res, e := s.answer(ctx, ps)
	if e != nil {
		writeError(w, e)
		return
	}
	n := int64(len(res))
	answers, scores, starts, ends := make([]string, n), make([]float32, n), make([]int64, n), make([]int64, n)
	for i, r := range res {
		a := r.Answers[0]
		answers[i], scores[i], starts[i], ends[i] = a.Answer, float32(a.Score), int64(a.Start), int64(a.End)
	}
	all := map[string]V2OutputTensor{
		"answer": {Name: "answer", Shape: []int64{n}, Datatype: "BYTES", Data: answers},
		"score":  {Name: "score", Shape: []int64{n}, Datatype: "FP32", Data: scores},
		"start":  {Name: "start", Shape: []int64{n}, Datatype: "INT64", Data: starts},
		"end":    {Name: "end", Shape: []int64{n}, Datatype: "INT64", Data: ends},
	}
	out := V2InferResponse{ModelName: p["model"], ModelVersion: "1", ID: req.ID, Outputs: []V2OutputTensor{}}
	for _, name := range want {
		out.Outputs = append(out.Outputs, all[name])
	}
	writeJSON(w, http.StatusOK, out)
}

// parseV2 checks a v2 infer request: inputs question and context, both
// BYTES, the same shape [N] or [N, 1], data flat lists of N strings; the
// outputs asked for must exist. It returns the queries and the output names.
func parseV2(req V2InferRequest, adapter string, lim limits) ([]parsed, []string, *apiError) {
	bad := func(format string, a ...any) ([]parsed, []string, *apiError) {
		return nil, nil, errorf(http.StatusBadRequest, format, a...)
	}
	if len(req.Inputs) == 0 {
		return bad("%q is missing or empty: give the BYTES inputs \"question\" and \"context\"", "inputs")
	}
	data := map[string][]string{}
	var shape0 []int64
	for i, in := range req.Inputs {
		where := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Name != "question" && in.Name != "context":
			return bad("%s: unknown input %q: the inputs are \"question\" and \"context\"", where, in.Name)
		case data[in.Name] != nil:
			return bad("%s: input %q is given twice", where, in.Name)
		case in.Datatype != "BYTES":
			return bad("%s: input %q has datatype %q; it must be BYTES", where, in.Name, in.Datatype)
		}
		n, ok := v2Count(in.Shape)
		if !ok {
			return bad("%s: input %q has shape %v; want [N] or [N, 1] with N >= 1", where, in.Name, in.Shape)
		}
		var vals []string
		if err := json.Unmarshal(in.Data, &vals); err != nil || in.Data == nil {
			return bad("%s: input %q: \"data\" must be a flat list of strings", where, in.Name)
		}
		if int64(len(vals)) != n {
			return bad("%s: input %q has shape %v (%d elements) but %d data elements", where, in.Name, in.Shape, n, len(vals))
		}
		if shape0 != nil && v2CountOr0(shape0) != n {
			return bad("%s: input %q has shape %v but the other input has shape %v", where, in.Name, in.Shape, shape0)
		}
		shape0 = in.Shape
		data[in.Name] = vals
	}
	for _, name := range []string{"question", "context"} {
		if data[name] == nil {
			return bad("input %q is missing", name)
		}
	}
	qs, cs := data["question"], data["context"]
	if len(qs) > lim.maxBatchItems {
		return nil, nil, errorf(http.StatusRequestEntityTooLarge, "the inputs hold %d questions; the limit is %d", len(qs), lim.maxBatchItems)
	}
	want := []string{}
	seen := map[string]bool{}
	for i, o := range req.Outputs {
		known := false
		for _, m := range v2Outputs {
			known = known || m.Name == o.Name
		}
		if !known {
			return bad("outputs[%d]: unknown output %q: the outputs are answer, score, start and end", i, o.Name)
		}
		if !seen[o.Name] {
			seen[o.Name] = true
			want = append(want, o.Name)
		}
	}
	if len(want) == 0 {
		for _, m := range v2Outputs {
			want = append(want, m.Name)
		}
	}
	ps := make([]parsed, len(qs))
	for i := range qs {
		where := ""
		if len(qs) > 1 {
			where = fmt.Sprintf("element %d: ", i)
		}
		p, e := checkRequest(AnswerRequest{Question: qs[i], Context: cs[i]}, where, lim)
		if e != nil {
			return nil, nil, e
		}
		p.adapter = adapter
		ps[i] = p
	}
	return ps, want, nil
}

// v2Count is the number of elements of a shape [N] or [N, 1].
func v2Count(shape []int64) (int64, bool) {
	switch {
	case len(shape) == 1 && shape[0] >= 1:
		return shape[0], true
	case len(shape) == 2 && shape[0] >= 1 && shape[1] == 1:
		return shape[0], true
	}
	return 0, false
}

func v2CountOr0(shape []int64) int64 {
	n, _ := v2Count(shape)
	return n
}
