package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loraqa/loraqa/engine"
)

// AnswerRequest is the body of POST /v1/answer and one item of
// POST /v1/answer/batch.
type AnswerRequest struct {
	Question string `json:"question"`
	Context  string `json:"context,omitempty"`
	// Passages, instead of Context: the answers are the best spans of all
	// of them, each naming its passage (engine.Query.Passages).
	Passages []string `json:"passages,omitempty"`
	Adapter  *string  `json:"adapter,omitempty"` // absent or null: the default adapter
	TopK     *int     `json:"top_k,omitempty"`   // absent or null: 1
}

// Answer is one answer span, as `loraqa predict` prints it: start and end
// are code-point offsets into the context.
type Answer = engine.Answer

// AnswerResponse is the reply to one question.
type AnswerResponse struct {
	Answers []Answer `json:"answers"`
	Adapter string   `json:"adapter"`
	TookMS  float64  `json:"took_ms"`
}

// BatchResponse is the reply to POST /v1/answer/batch: one result per
// request, in order.
type BatchResponse struct {
	Results []AnswerResponse `json:"results"`
	TookMS  float64          `json:"took_ms"`
}

// apiError is a request that cannot be answered: an HTTP status and a message.
type apiError struct {
	status     int
	msg        string
	retryAfter bool // a Retry-After: 1 header goes with it
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, a ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, a...)}
}

// limits are what a request may ask for.
type limits struct {
	maxContext    int // code points
	maxBatchItems int
	maxTopK       int
}

// parsed is a validated request: a question, its context, the adapter it
// names ("" = the default) and how many answers it wants.
type parsed struct {
	Query
	adapter string
	topK    int
}

// parseAnswer decodes and checks the body of POST /v1/answer.
func parseAnswer(body []byte, lim limits) (parsed, *apiError) {
	r, e := decodeRequest(body)
	if e != nil {
		return parsed{}, e
	}
	return checkRequest(r, "", lim)
}

// given is a field of a request that remembers whether it was in the body,
// and whether as null, so that one decode can tell "absent" from "null".
type given[T any] struct {
	v           T
	there, null bool
}

// UnmarshalJSON notes that the field is there (encoding/json calls it for
// null too) and decodes its value.
func (g *given[T]) UnmarshalJSON(b []byte) error {
	g.there = true
	if string(b) == "null" {
		g.null = true
		return nil
	}
	return json.Unmarshal(b, &g.v)
}

// requestWire is AnswerRequest as the body holds it.
type requestWire struct {
	Question string          `json:"question"`
	Context  given[string]   `json:"context"`
	Passages given[[]string] `json:"passages"`
	Adapter  *string         `json:"adapter"`
	TopK     *int            `json:"top_k"`
}

// decodeRequest decodes one answer request strictly. It refuses null
// passages, and a context given beside passages, even an empty or a null
// one (adapter and top_k may be null, which means their default; a null
// context alone is a missing one).
func decodeRequest(body []byte) (AnswerRequest, *apiError) {
	var w requestWire
	if e := decodeStrict(body, &w); e != nil {
		return AnswerRequest{}, e
	}
	switch {
	case w.Context.null && w.Passages.there:
		return AnswerRequest{}, errorf(http.StatusBadRequest, "%q is null: leave it out, or give a text", "context")
	case w.Passages.null:
		return AnswerRequest{}, errorf(http.StatusBadRequest, "%q is null: leave it out, or give a list of texts", "passages")
	case w.Context.there && w.Passages.there:
		return AnswerRequest{}, errorf(http.StatusBadRequest, "give %q or %q, not both", "context", "passages")
	}
	return AnswerRequest{Question: w.Question, Context: w.Context.v, Passages: w.Passages.v, Adapter: w.Adapter, TopK: w.TopK}, nil
}

// parseBatch decodes and checks the body of POST /v1/answer/batch: a JSON
// array of answer requests.
func parseBatch(body []byte, lim limits) ([]parsed, *apiError) {
	var rs []json.RawMessage
	if e := decodeStrict(body, &rs); e != nil {
		return nil, e
	}
	if rs == nil {
		return nil, errorf(http.StatusBadRequest, "want a JSON array of requests, got null")
	}
	if len(rs) == 0 {
		return nil, errorf(http.StatusBadRequest, "the batch is empty")
	}
	if len(rs) > lim.maxBatchItems {
		return nil, errorf(http.StatusRequestEntityTooLarge, "the batch holds %d requests; the limit is %d", len(rs), lim.maxBatchItems)
	}
	out := make([]parsed, len(rs))
	for i, raw := range rs {
		r, e := decodeRequest(raw)
		if e != nil {
			e.msg = fmt.Sprintf("request %d: %s", i, e.msg)
			return nil, e
		}
		p, e := checkRequest(r, fmt.Sprintf("request %d: ", i), lim)
		if e != nil {
			return nil, e
		}
		out[i] = p
	}
	return out, nil
}

func checkRequest(r AnswerRequest, where string, lim limits) (parsed, *apiError) {
	p := parsed{Query: Query{Question: r.Question, Context: r.Context, Passages: r.Passages}, topK: 1}
	switch {
	case strings.TrimSpace(r.Question) == "":
		return p, errorf(http.StatusBadRequest, "%s%q is missing or empty", where, "question")
	case r.Context != "" && r.Passages != nil:
		return p, errorf(http.StatusBadRequest, "%sgive %q or %q, not both", where, "context", "passages")
	case r.Passages != nil:
		if len(r.Passages) == 0 || len(r.Passages) > lim.maxBatchItems {
			return p, errorf(http.StatusBadRequest, "%s%q holds %d passages; give 1 to %d", where, "passages", len(r.Passages), lim.maxBatchItems)
		}
		for i, ps := range r.Passages {
			if strings.TrimSpace(ps) == "" {
				return p, errorf(http.StatusBadRequest, "%spassages[%d] is empty", where, i)
			}
			if n := utf8.RuneCountInString(ps); n > lim.maxContext {
				return p, errorf(http.StatusRequestEntityTooLarge, "%spassages[%d] has %d characters; the limit is %d", where, i, n, lim.maxContext)
			}
		}
	case strings.TrimSpace(r.Context) == "":
		return p, errorf(http.StatusBadRequest, "%s%q is missing or empty (or give %q)", where, "context", "passages")
	}
	if n := utf8.RuneCountInString(r.Context); n > lim.maxContext {
		return p, errorf(http.StatusRequestEntityTooLarge, "%sthe context has %d characters; the limit is %d", where, n, lim.maxContext)
	}
	if r.TopK != nil {
		if *r.TopK < 1 || *r.TopK > lim.maxTopK {
			return p, errorf(http.StatusBadRequest, "%s%q is %d; it must be between 1 and %d", where, "top_k", *r.TopK, lim.maxTopK)
		}
		p.topK = *r.TopK
	}
	if r.Adapter != nil {
		if *r.Adapter == "" {
			return p, errorf(http.StatusBadRequest, "%s%q is empty: leave it out for the default adapter", where, "adapter")
		}
		p.adapter = *r.Adapter
	}
	return p, nil
}

// decodeStrict decodes exactly one JSON value into v: unknown fields, wrong
// types and trailing data are errors that name what is wrong.
func decodeStrict(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "the request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "malformed JSON: data after the request's end")
	}
	return nil
}

func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var uns *unsupportedError
	switch {
	case errors.As(err, &uns):
		return errorf(http.StatusBadRequest, "%s", uns.msg)
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, "wrong type: want %s, got JSON %s", jsonKind(typ.Type.String()), typ.Value)
		}
		return errorf(http.StatusBadRequest, "wrong type for %q: want %s, got JSON %s", typ.Field, jsonKind(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed JSON: the body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
}

// jsonKind names a Go type as a JSON user sees it.
func jsonKind(goType string) string {
	switch {
	case goType == "string", goType == "*string":
		return "a string"
	case goType == "int", goType == "*int", goType == "int64", goType == "*int64":
		return "an integer"
	case goType == "bool", goType == "*bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// answer asks the engine for the answers to the requests.
func (s *Server) answer(ctx context.Context, ps []parsed) ([]AnswerResponse, *apiError) {
	qs := make([]engine.Query, len(ps))
	for i, p := range ps {
		q := p.Query
		q.Adapter, q.TopK = p.adapter, p.topK
		qs[i] = q
	}
	rs, err := s.eng.AnswerBatch(ctx, qs)
	if err != nil {
		return nil, s.engineError(ctx, err, len(ps) > 1)
	}
	out := make([]AnswerResponse, len(rs))
	for i, r := range rs {
		out[i] = AnswerResponse{Answers: r.Answers, Adapter: r.Adapter}
	}
	return out, nil
}

// engineError is the reply to a query the engine could not answer: 404 for
// an unknown or unloaded adapter, 422 for a query it cannot cut into
// windows, 429 when its queue is full, 503 (with Retry-After) when the
// model ran out of memory on its request, 503 while it shuts down, 504 (or
// 499) when the request's context ended, else 500. In a batch the message
// names the request.
func (s *Server) engineError(ctx context.Context, err error, batch bool) *apiError {
	where := ""
	var qe *engine.QueryError
	if errors.As(err, &qe) {
		if batch {
			where = fmt.Sprintf("request %d: ", qe.Index)
		}
		err = qe.Err
	}
	msg := where + err.Error()
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctxError(ctx, s.opt.Timeout)
	case errors.Is(err, engine.ErrUnknownAdapter):
		if !strings.Contains(msg, "base model only") {
			msg += fmt.Sprintf(" (GET %s lists them)", pathAdapters)
		}
		return errorf(http.StatusNotFound, "%s", msg)
	case errors.Is(err, engine.ErrUnloaded):
		return errorf(http.StatusNotFound, "%s", msg)
	case errors.Is(err, engine.ErrBusy):
		return errorf(http.StatusTooManyRequests, "%s", msg)
	case errors.Is(err, engine.ErrOutOfMemory):
		e := errorf(http.StatusServiceUnavailable, "out of memory: %s; the request's memory is freed, retry later (a shorter context or a smaller batch needs less)", msg)
		e.retryAfter = true
		return e
	case errors.Is(err, engine.ErrClosed):
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	case errors.Is(err, engine.ErrBadInput):
		return errorf(http.StatusUnprocessableEntity, "%s", msg)
	}
	return errorf(http.StatusInternalServerError, "%s", msg)
}

// ctxError is the reply to a request whose context ended: its timeout, or
// the client going away (499, as nginx logs it; nobody reads it).
func ctxError(ctx context.Context, timeout time.Duration) *apiError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf(http.StatusGatewayTimeout, "no answer within the request timeout of %v", timeout)
	}
	return errorf(499, "the client closed the request")
}
