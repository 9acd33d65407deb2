package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The Open Inference Protocol v2 (KServe, Triton) for extractive QA: a model
// is an adapter (a server without adapters has one model, "base") with one
// version, "1"; inputs "question" and "context" are BYTES tensors of shape
// [N] (or [N, 1]) whose data are flat lists of strings; outputs are "answer"
// (BYTES), "score" (FP32), "start" and "end" (INT64, code-point offsets into
// the context), each of shape [N]: the best answer of each question, as
// /v1/answer gives it.
//
// The binary tensor data extension (Triton's, which tritonclient uses by
// default and KServe's client reads) is supported both ways: an input may
// carry "parameters": {"binary_data_size": K} instead of "data", its bytes
// following the JSON in the body, whose length the header
// Inference-Header-Content-Length gives; outputs are sent the same way
// when a requested output has "parameters": {"binary_data": true} or the
// request has "parameters": {"binary_data_output": true}. BYTES elements
// are each a 4-byte little-endian length and the bytes; FP32 and INT64
// elements little-endian.

// headerContentLength is the binary extension's header: the length of the
// JSON part of a body whose binary tensor data follow it.
const headerContentLength = "Inference-Header-Content-Length"

// v2Version is the one version of every model.
const v2Version = "1"

// v2Extensions are the protocol extensions the server metadata announces.
var v2Extensions = []string{"binary_tensor_data"}

// V2Tensor is an input tensor of the v2 protocol: its data in JSON, or
// with parameters {"binary_data_size": K} in the body after the JSON.
type V2Tensor struct {
	Name       string           `json:"name"`
	Shape      []int64          `json:"shape"`
	Datatype   string           `json:"datatype"`
	Parameters *V2TensorParams  `json:"parameters,omitempty"`
	Data       *json.RawMessage `json:"data,omitempty"`
}

// V2TensorParams are the parameters of an input tensor or of an output of
// the reply: binary_data_size, the bytes of its binary data.
type V2TensorParams struct {
	BinaryDataSize *int64 `json:"binary_data_size,omitempty"`
}

// V2InferRequest is the body of POST /v2/models/{model}/infer (the JSON
// part, with the binary extension).
type V2InferRequest struct {
	ID           *string             `json:"id,omitempty"`
	ModelName    *string             `json:"model_name,omitempty"`
	ModelVersion *string             `json:"model_version,omitempty"`
	Parameters   *V2RequestParams    `json:"parameters,omitempty"`
	Inputs       []V2Tensor          `json:"inputs"`
	Outputs      []V2RequestedOutput `json:"outputs,omitempty"`
}

// V2RequestParams are the request parameters served: binary_data_output,
// every output as binary data unless an output says otherwise.
type V2RequestParams struct {
	BinaryDataOutput *bool `json:"binary_data_output,omitempty"`
}

// V2RequestedOutput names an output the client wants (none: all).
type V2RequestedOutput struct {
	Name       string          `json:"name"`
	Parameters *V2OutputParams `json:"parameters,omitempty"`
}

// V2OutputParams are a requested output's parameters: binary_data, send
// it as binary data.
type V2OutputParams struct {
	BinaryData *bool `json:"binary_data,omitempty"`
}

// V2OutputTensor is an output of the infer response: Data, or with
// binary data Parameters.BinaryDataSize.
type V2OutputTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters *V2TensorParams `json:"parameters,omitempty"`
	Data       any             `json:"data,omitempty"`
}

// V2InferResponse is the reply of POST /v2/models/{model}/infer.
type V2InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
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
	v2Inputs  = []v2TensorMeta{{"question", "BYTES", []int64{-1}}, {"context", "BYTES", []int64{-1}}, {"passages", "BYTES", []int64{-1, -1}}}
	v2Outputs = []v2TensorMeta{{"answer", "BYTES", []int64{-1}}, {"score", "FP32", []int64{-1}}, {"start", "INT64", []int64{-1}}, {"end", "INT64", []int64{-1}}, {"passage", "INT64", []int64{-1}}, {"no_answer", "BOOL", []int64{-1}}}
)

const v2Platform = "loraqa_extractive_qa"

func (s *Server) routeV2Server(w *responseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "loraqa", "version": "1", "extensions": v2Extensions})
}

func (s *Server) routeV2Live(w *responseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

// errDraining is the 503 of the readiness routes while the server drains.
func errDraining() *apiError {
	return errorf(http.StatusServiceUnavailable, "not ready: the server is shutting down")
}

func (s *Server) routeV2Ready(w *responseWriter, _ *http.Request) {
	if s.draining() {
		writeError(w, errDraining())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// v2Model finds the adapter that the model (and version, "" when the path
// has none) of a v2 path stands for ("base": the base model alone, on a
// server without adapters). The name returned is what /v1 requests name
// ("" for the base).
func (s *Server) v2Model(r *http.Request) (string, *apiError) {
	name := r.PathValue("model")
	adapter, found := "", false
	as := s.eng.Adapters()
	for _, a := range as {
		if a.Name == name {
			adapter, found = name, true
		}
	}
	if name == "base" && len(as) == 0 {
		found = true
	}
	if !found {
		if ext := tritonExtension(r.URL.Path); ext != "" { // GET /v2/models/stats
			return "", errorf(http.StatusNotFound, "not supported: Triton's %s extension (GET /v2 lists the extensions served: %s)",
				ext, strings.Join(v2Extensions, ", "))
		}
		return "", errorf(http.StatusNotFound, "unknown model %q (GET %s lists the adapters, which are the models)", name, pathAdapters)
	}
	if v := r.PathValue("version"); v != "" && v != v2Version {
		return "", errorf(http.StatusNotFound, "unknown version %q of model %q: its one version is %q", v, name, v2Version)
	}
	return adapter, nil
}

func (s *Server) routeV2Metadata(w *responseWriter, r *http.Request) {
	w.adapter = r.PathValue("model")
	if _, e := s.v2Model(r); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": r.PathValue("model"), "versions": []string{v2Version}, "platform": v2Platform,
		"inputs": v2Inputs, "outputs": v2Outputs,
	})
}

func (s *Server) routeV2ModelReady(w *responseWriter, r *http.Request) {
	w.adapter = r.PathValue("model")
	if _, e := s.v2Model(r); e != nil {
		writeError(w, e)
		return
	}
	if s.draining() {
		writeError(w, errDraining())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("model"), "ready": true})
}

func (s *Server) routeV2Infer(w *responseWriter, r *http.Request) {
	model := r.PathValue("model")
	w.adapter = model
	adapter, e := s.v2Model(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		writeError(w, errorf(http.StatusUnsupportedMediaType, "Content-Encoding %q is not supported: send the body uncompressed", enc))
		return
	}
	var req V2InferRequest
	var outs []v2Output
	res, e := s.infer(w, r, func(body []byte) ([]parsed, *apiError) {
		jsonPart, binPart, e := splitBinary(body, r.Header.Values(headerContentLength))
		if e != nil {
			return nil, e
		}
		if e := decodeStrict(jsonPart, &req); e != nil {
			return nil, e
		}
		if e := checkV2Target(req, model, r.PathValue("version")); e != nil {
			return nil, e
		}
		ps, o, e := parseV2(req, binPart, adapter, s.lim)
		outs = o
		return ps, e
	})
	if e != nil {
		writeError(w, e)
		return
	}
	id := ""
	if req.ID != nil {
		id = *req.ID
	}
	writeV2Reply(w, V2InferResponse{ModelName: model, ModelVersion: v2Version, ID: id, Outputs: []V2OutputTensor{}}, res, outs)
}

// splitBinary cuts a body into its JSON and the binary tensor data after
// it, at the length the header Inference-Header-Content-Length gives (none:
// all JSON).
func splitBinary(body []byte, header []string) ([]byte, []byte, *apiError) {
	switch len(header) {
	case 0:
		return body, nil, nil
	case 1:
	default:
		return nil, nil, errorf(http.StatusBadRequest, "the header %s is given %d times", headerContentLength, len(header))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(header[0]), 10, 64)
	if err != nil || n < 0 || n > int64(len(body)) {
		return nil, nil, errorf(http.StatusBadRequest, "the header %s is %q: want the length of the JSON part of the body, 0 to %d bytes",
			headerContentLength, header[0], len(body))
	}
	return body[:n], body[n:], nil
}

// checkV2Target checks the request's model_name and model_version against
// the path's model and version.
func checkV2Target(req V2InferRequest, model, version string) *apiError {
	if req.ModelName != nil && *req.ModelName != model {
		return errorf(http.StatusBadRequest, "%q is %q but the path names the model %q", "model_name", *req.ModelName, model)
	}
	if req.ModelVersion == nil {
		return nil
	}
	switch v := *req.ModelVersion; {
	case version != "" && v != version:
		return errorf(http.StatusBadRequest, "%q is %q but the path names version %q", "model_version", v, version)
	case v != v2Version:
		return errorf(http.StatusNotFound, "unknown version %q of model %q: its one version is %q", v, model, v2Version)
	}
	return nil
}

// v2Output is an output to send: its name, and whether as binary data.
type v2Output struct {
	name   string
	binary bool
}

// parseV2 checks a v2 infer request: inputs question and context, both
// BYTES, the same shape [N] or [N, 1], their data flat lists of N strings
// in JSON or N length-prefixed strings in bin; or, instead of context,
// passages of shape [N, P]: question i's passages are row i, its empty
// strings left out (rows of fewer passages are padded with ""). The outputs
// asked for must exist; passage only with passages. It returns the queries
// and the outputs to send (all of them when none is named: passage only
// with passages).
func parseV2(req V2InferRequest, bin []byte, adapter string, lim limits) ([]parsed, []v2Output, *apiError) {
	bad := func(format string, a ...any) ([]parsed, []v2Output, *apiError) {
		return nil, nil, errorf(http.StatusBadRequest, format, a...)
	}
	if len(req.Inputs) == 0 {
		return bad("%q is missing or empty: give the BYTES inputs \"question\" and \"context\" (or \"passages\")", "inputs")
	}
	data := map[string][]string{}
	var shape0 []int64
	off := int64(0)
	for i, in := range req.Inputs {
		where := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Name != "question" && in.Name != "context" && in.Name != "passages":
			return bad("%s: unknown input %q: the inputs are \"question\" and \"context\" (or \"passages\")", where, in.Name)
		case data[in.Name] != nil:
			return bad("%s: input %q is given twice", where, in.Name)
		case in.Datatype != "BYTES":
			return bad("%s: input %q has datatype %q; it must be BYTES", where, in.Name, in.Datatype)
		}
		n, ok := v2Count(in.Shape)
		if in.Name == "passages" {
			if n, ok = passagesCount(in.Shape); !ok {
				return bad("%s: input %q has shape %v; want [N, P] with N, P >= 1", where, in.Name, in.Shape)
			}
		} else if !ok {
			return bad("%s: input %q has shape %v; want [N] or [N, 1] with N >= 1", where, in.Name, in.Shape)
		}
		var vals []string
		switch size := binarySize(in.Parameters); {
		case size != nil && in.Data != nil:
			return bad("%s: input %q has both \"data\" and the parameter binary_data_size: give one", where, in.Name)
		case size != nil:
			if *size < 0 || *size > int64(len(bin))-off {
				return bad("%s: input %q: binary_data_size %d, but %d bytes of binary data are left after the JSON",
					where, in.Name, *size, int64(len(bin))-off)
			}
			var err error
			if vals, err = decodeBytesTensor(bin[off : off+*size]); err != nil {
				return bad("%s: input %q: binary data: %v", where, in.Name, err)
			}
			off += *size
		case in.Data == nil:
			return bad("%s: input %q has no \"data\" (nor the parameter binary_data_size)", where, in.Name)
		default:
			if err := json.Unmarshal(*in.Data, &vals); err != nil || vals == nil {
				return bad("%s: input %q: \"data\" must be a flat list of strings", where, in.Name)
			}
		}
		if int64(len(vals)) != n {
			return bad("%s: input %q has shape %v (%d elements) but %d data elements", where, in.Name, in.Shape, n, len(vals))
		}
		if shape0 != nil && shape0[0] != in.Shape[0] {
			return bad("%s: input %q has shape %v but the other input has shape %v", where, in.Name, in.Shape, shape0)
		}
		shape0 = in.Shape
		data[in.Name] = vals
	}
	if off != int64(len(bin)) {
		return bad("%d bytes of binary data after the JSON, but the inputs' binary_data_size add up to %d", len(bin), off)
	}
	switch {
	case data["question"] == nil:
		return bad("input %q is missing", "question")
	case data["context"] != nil && data["passages"] != nil:
		return bad("give the input %q or %q, not both", "context", "passages")
	case data["context"] == nil && data["passages"] == nil:
		return bad("input %q (or %q) is missing", "context", "passages")
	}
	qs, cs, withPassages := data["question"], data["context"], data["passages"] != nil
	if len(qs) > lim.maxBatchItems {
		return nil, nil, errorf(http.StatusRequestEntityTooLarge, "the inputs hold %d questions; the limit is %d", len(qs), lim.maxBatchItems)
	}
	binaryAll := req.Parameters != nil && req.Parameters.BinaryDataOutput != nil && *req.Parameters.BinaryDataOutput
	var outs []v2Output
	seen := map[string]bool{}
	for i, o := range req.Outputs {
		known := false
		for _, m := range v2Outputs {
			known = known || m.Name == o.Name
		}
		if !known {
			return bad("outputs[%d]: unknown output %q: the outputs are answer, score, start, end, passage and no_answer", i, o.Name)
		}
		if o.Name == "passage" && !withPassages {
			return bad("outputs[%d]: output %q needs the input %q", i, o.Name, "passages")
		}
		if seen[o.Name] {
			return bad("outputs[%d]: output %q is asked for twice", i, o.Name)
		}
		seen[o.Name] = true
		b := binaryAll
		if o.Parameters != nil && o.Parameters.BinaryData != nil {
			b = *o.Parameters.BinaryData
		}
		outs = append(outs, v2Output{o.Name, b})
	}
	if len(outs) == 0 {
		for _, m := range v2Outputs {
			if (m.Name != "passage" && m.Name != "no_answer") || withPassages {
				outs = append(outs, v2Output{m.Name, binaryAll})
			}
		}
	}
	ps := make([]parsed, len(qs))
	for i := range qs {
		where := ""
		if len(qs) > 1 {
			where = fmt.Sprintf("element %d: ", i)
		}
		r := AnswerRequest{Question: qs[i]}
		if withPassages {
			r.Passages = passagesRow(data["passages"], len(qs), i)
		} else {
			r.Context = cs[i]
		}
		p, e := checkRequest(r, where, lim)
		if e != nil {
			return nil, nil, e
		}
		p.adapter = adapter
		ps[i] = p
	}
	return ps, outs, nil
}

func binarySize(p *V2TensorParams) *int64 {
	if p == nil {
		return nil
	}
	return p.BinaryDataSize
}

// decodeBytesTensor reads BYTES elements in the binary extension's layout:
// each a 4-byte little-endian length and that many bytes, which must be
// UTF-8 here.
func decodeBytesTensor(b []byte) ([]string, error) {
	out := []string{}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("element %d: %d bytes left, too few for its 4-byte length", len(out), len(b))
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("element %d: length %d, but %d bytes are left", len(out), n, len(b))
		}
		if !utf8.Valid(b[:n]) {
			return nil, fmt.Errorf("element %d is not UTF-8 text", len(out))
		}
		out = append(out, string(b[:n]))
		b = b[n:]
	}
	return out, nil
}

// writeV2Reply sends the outputs asked for: in JSON, or those wanted as
// binary data after the JSON (the header Inference-Header-Content-Length
// then says where the JSON ends).
func writeV2Reply(w http.ResponseWriter, out V2InferResponse, res []AnswerResponse, outs []v2Output) {
	n := len(res)
	answers, scores := make([]string, n), make([]float32, n)
	starts, ends, passages := make([]int64, n), make([]int64, n), make([]int64, n)
	noAnswer := make([]bool, n)
	for i, r := range res {
		a := r.Answers[0]
		answers[i], scores[i], starts[i], ends[i], noAnswer[i] = a.Answer, float32(a.Score), int64(a.Start), int64(a.End), a.NoAnswer
		if a.Passage != nil {
			passages[i] = int64(*a.Passage)
		}
	}
	var bin bytes.Buffer
	for _, o := range outs {
		t := V2OutputTensor{Name: o.name, Shape: []int64{int64(n)}}
		var raw []byte
		switch o.name {
		case "answer":
			t.Datatype, t.Data = "BYTES", answers
			for _, a := range answers {
				raw = binary.LittleEndian.AppendUint32(raw, uint32(len(a)))
				raw = append(raw, a...)
			}
		case "no_answer":
			t.Datatype, t.Data = "BOOL", noAnswer
			for _, b := range noAnswer {
				raw = append(raw, map[bool]byte{false: 0, true: 1}[b])
			}
		case "score":
			t.Datatype, t.Data = "FP32", scores
			for _, f := range scores {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
		default:
			xs := map[string][]int64{"start": starts, "end": ends, "passage": passages}[o.name]
			t.Datatype, t.Data = "INT64", xs
			for _, x := range xs {
				raw = binary.LittleEndian.AppendUint64(raw, uint64(x))
			}
		}
		if o.binary {
			size := int64(len(raw))
			t.Data, t.Parameters = nil, &V2TensorParams{BinaryDataSize: &size}
			bin.Write(raw)
		}
		out.Outputs = append(out.Outputs, t)
	}
	if bin.Len() == 0 {
		writeJSON(w, http.StatusOK, out)
		return
	}
	head, _ := json.Marshal(out) // strings, numbers and slices of them: cannot fail
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set(headerContentLength, strconv.Itoa(len(head)))
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+bin.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head)
	_, _ = w.Write(bin.Bytes())
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

// passagesCount is the number of elements of the passages' shape [N, P].
func passagesCount(shape []int64) (int64, bool) {
	if len(shape) != 2 || shape[0] < 1 || shape[1] < 1 {
		return 0, false
	}
	return shape[0] * shape[1], true
}

// passagesRow is row i of n rows of passages (a flat row-major [n, P] list),
// its empty strings, the padding of a shorter row, left out.
func passagesRow(flat []string, n, i int) []string {
	per := len(flat) / n
	row := []string{}
	for _, p := range flat[i*per : (i+1)*per] {
		if p != "" {
			row = append(row, p)
		}
	}
	return row
}

// UnmarshalJSON refuses request parameters that are not served, naming them.
func (p *V2RequestParams) UnmarshalJSON(b []byte) error {
	type plain V2RequestParams
	return decodeParams(b, (*plain)(p), "request parameter", "binary_data_output")
}

// UnmarshalJSON refuses input parameters that are not served, naming them.
func (p *V2TensorParams) UnmarshalJSON(b []byte) error {
	type plain V2TensorParams
	return decodeParams(b, (*plain)(p), "input parameter", "binary_data_size")
}

// UnmarshalJSON refuses output parameters that are not served, naming them.
func (p *V2OutputParams) UnmarshalJSON(b []byte) error {
	type plain V2OutputParams
	return decodeParams(b, (*plain)(p), "output parameter", "binary_data")
}

// unsupportedError is a protocol feature the server does not serve.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

// decodeParams decodes a parameters object into v, refusing the keys that
// are not known with an error that names them.
func decodeParams(b []byte, v any, what string, known ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return &unsupportedError{fmt.Sprintf("not supported: the %s %s (served: %s)", what, strings.Join(unknown, ", "), strings.Join(known, ", "))}
	}
	return json.Unmarshal(b, v)
}
