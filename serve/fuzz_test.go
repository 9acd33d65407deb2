package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
)

// fuzzEngine stands in for the engine: two adapters over a small in-memory
// WordPiece vocabulary, whose "model" gives every window zero logits; the
// windows and the post-processing are the data package's, as the engine's.
type fuzzEngine struct {
	backend // the methods the answer routes do not call
	tok     *data.Tokenizer
	feat    data.FeatureOptions
	post    data.PostprocessOptions
}

func (f *fuzzEngine) AnswerBatch(ctx context.Context, qs []engine.Query) ([]engine.Result, error) {
	out := make([]engine.Result, len(qs))
	for i, q := range qs {
		name := q.Adapter
		switch name {
		case "":
			name = "a"
		case "a", "b":
		default:
			return nil, &engine.QueryError{Index: i, Err: fmt.Errorf("%w %q", engine.ErrUnknownAdapter, q.Adapter)}
		}
		ex := []data.Example{{ID: "0", Question: q.Question, Context: q.Context}}
		feats, _, err := data.Featurize(f.tok, ex, f.feat)
		if err != nil {
			return nil, &engine.QueryError{Index: i, Err: fmt.Errorf("%w: cannot cut the context into windows: %v", engine.ErrBadInput, err)}
		}
		starts, ends := make([][]float32, len(feats)), make([][]float32, len(feats))
		for i, f := range feats {
			starts[i], ends[i] = make([]float32, len(f.InputIDs)), make([]float32, len(f.InputIDs))
		}
		preds, err := data.Postprocess(ex, feats, starts, ends, f.post)
		if err != nil {
			return nil, err
		}
		out[i] = engine.Result{Answers: topAnswers(preds[0], max(q.TopK, 1)), Adapter: name}
	}
	return out, nil
}

// topAnswers are p's k best candidates as answers, as the engine gives them.
func topAnswers(p data.Prediction, k int) []Answer {
	var out []Answer
	for _, c := range p.NBest[:min(k, len(p.NBest))] {
		out = append(out, Answer{Answer: c.Text, Score: c.Score, Start: c.Start, End: c.End})
	}
	if len(out) == 0 {
		out = append(out, Answer{Answer: p.Text, Score: p.Score, Start: p.Start, End: p.End})
	}
	return out
}

func (f *fuzzEngine) Default() string   { return "a" }
func (f *fuzzEngine) Queue() (int, int) { return 0, 64 }
func (f *fuzzEngine) Closed() bool      { return false }
func (f *fuzzEngine) MaxTopK() int      { return f.post.NBestSize }
func (f *fuzzEngine) Adapters() []engine.AdapterInfo {
	return []engine.AdapterInfo{{Name: "a", Default: true}, {Name: "b"}}
}

// fuzzServer is a Server over a fuzzEngine, so that requests go the whole
// way through ServeHTTP (decoding, validation, windows, post-processing, the
// reply) without a model.
func fuzzServer(t testing.TB) *Server {
	vocab := map[string]int{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
	for _, w := range strings.Fields("the what was revenue in million ? . , $ 2019 5 of a is") {
		vocab[w] = len(vocab)
	}
	for c := 'a'; c <= 'z'; c++ {
		vocab[string(c)] = len(vocab)
		vocab["##"+string(c)] = len(vocab)
	}
	opts := data.DefaultTokenizerOptions()
	opts.ModelMaxLength = 32
	tok, err := data.NewTokenizer(vocab, opts)
	if err != nil {
		t.Fatal(err)
	}
	eo, o := engine.DefaultOptions(), DefaultOptions()
	eo.Features.MaxSeqLength, eo.Features.DocStride = 32, 8
	o.MaxBody, o.MaxContext, o.MaxBatchItems = 8<<10, 2000, 8
	return newServer(o, &fuzzEngine{tok: tok, feat: eo.Features, post: eo.Post})
}

// FuzzAnswerRequest: whatever the body, the server never panics and answers
// 200 with well-formed answers or a 4xx with a JSON {"error": ...}.
func FuzzAnswerRequest(f *testing.F) {
	for _, seed := range []string{
		`{"question":"what was the revenue?","context":"the revenue was $5 million in 2019."}`,
		`{"question":"what?","context":"a b c","adapter":"b","top_k":3}`,
		`{"question":"what?","context":"a b c","adapter":"zzz"}`,
		`{"question":"what?","context":"a b c","top_k":0}`,
		`{"question":1}`,
		`{"question":"q","context":"c","top_k":1e3}`,
		`{"question":"q","context":"c"}{}`,
		`[{"question":"q","context":"c"},{"question":"what","context":"revenue","top_k":20}]`,
		`{"question":"` + strings.Repeat("what ", 40) + `","context":"c"}`,
		`{"question":"q\u0000","context":"\ud800 é 漢字 👍"}`,
		`null`, `[]`, `"x"`, ``, `{`,
	} {
		f.Add([]byte(seed), strings.HasPrefix(seed, "["))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, batch bool) {
		path := pathAnswer
		if batch {
			path = pathBatch
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		res := rec.Result()
		if res.StatusCode != http.StatusOK {
			if res.StatusCode < 400 || res.StatusCode > 499 {
				t.Fatalf("status %d for %q: %s", res.StatusCode, body, rec.Body.Bytes())
			}
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e) != 1 || e["error"] == "" {
				t.Fatalf("status %d for %q: the body %q is not {\"error\": ...}", res.StatusCode, body, rec.Body.Bytes())
			}
			return
		}
		// 200: the request was valid, and each answer is a span of its context.
		var ps []parsed
		if batch {
			var e *apiError
			if ps, e = parseBatch(body, s.lim); e != nil {
				t.Fatalf("200 for a body parseBatch refuses: %v", e)
			}
			var br BatchResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &br); err != nil || len(br.Results) != len(ps) {
				t.Fatalf("batch reply %q for %d requests (%v)", rec.Body.Bytes(), len(ps), err)
			}
			for i, r := range br.Results {
				checkAnswers(t, ps[i], r)
			}
			return
		}
		p, e := parseAnswer(body, s.lim)
		if e != nil {
			t.Fatalf("200 for a body parseAnswer refuses: %v", e)
		}
		var r AnswerResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", rec.Body.Bytes(), err)
		}
		checkAnswers(t, p, r)
	})
}

func checkAnswers(t *testing.T, p parsed, r AnswerResponse) {
	t.Helper()
	if strings.TrimSpace(p.Question) == "" || strings.TrimSpace(p.Context) == "" || p.topK < 1 || p.topK > 20 {
		t.Fatalf("accepted an invalid request %+v", p)
	}
	if want := map[string]string{"": "a", "a": "a", "b": "b"}[p.adapter]; r.Adapter != want {
		t.Fatalf("adapter %q answered a request for %q", r.Adapter, p.adapter)
	}
	if len(r.Answers) < 1 || len(r.Answers) > p.topK {
		t.Fatalf("%d answers for top_k %d", len(r.Answers), p.topK)
	}
	if !utf8.ValidString(p.Context) {
		t.Fatalf("decoded context %q is not UTF-8", p.Context)
	}
	ctx := []rune(p.Context)
	for _, a := range r.Answers {
		if a.Start < 0 {
			continue // no span
		}
		if a.End < a.Start || a.End > len(ctx) || string(ctx[a.Start:a.End]) != a.Answer {
			t.Fatalf("answer %+v is not a span of the context %q", a, p.Context)
		}
	}
}

// FuzzV2Infer: whatever the body and the binary extension's header, a v2
// infer never panics and answers 200 with the outputs of every question or
// a 4xx with a JSON {"error": ...}.
func FuzzV2Infer(f *testing.F) {
	q, c := bytesTensor("what was the revenue?"), bytesTensor("the revenue was $5 million in 2019.")
	head := `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + fmt.Sprint(len(q)) +
		`}},{"name":"context","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + fmt.Sprint(len(c)) + `}}],"parameters":{"binary_data_output":true}}`
	f.Add([]byte(head+string(q)+string(c)), len(head))
	f.Add([]byte(`{"id":"1","model_name":"a","inputs":[`+q1+`,`+c1+`],"outputs":[{"name":"answer","parameters":{"binary_data":true}}]}`), -1)
	f.Add([]byte(`{"inputs":[`+q1+`,`+c1+`],"parameters":{"sequence_id":3}}`), -1)
	f.Add([]byte(`{"inputs":[]}`), 3)
	f.Add([]byte{}, 0)
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, header int) {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/a/infer", bytes.NewReader(body))
		if header >= 0 {
			req.Header.Set(headerContentLength, fmt.Sprint(header))
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			if rec.Code < 400 || rec.Code > 499 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
				t.Fatalf("status %d: the body %q is not {\"error\": ...}", rec.Code, rec.Body.Bytes())
			}
			return
		}
		out := rec.Body.Bytes()
		n := len(out)
		if h := rec.Header().Get(headerContentLength); h != "" {
			if _, err := fmt.Sscan(h, &n); err != nil || n > len(out) {
				t.Fatalf("reply header %s %q for %d bytes", headerContentLength, h, len(out))
			}
		}
		var r V2InferResponse
		if err := json.Unmarshal(out[:n], &r); err != nil || len(r.Outputs) == 0 {
			t.Fatalf("reply %q: %v", out[:n], err)
		}
		size := int64(0)
		for _, o := range r.Outputs {
			if o.Parameters != nil && o.Parameters.BinaryDataSize != nil {
				size += *o.Parameters.BinaryDataSize
			}
		}
		if int64(len(out)-n) != size {
			t.Fatalf("%d bytes after the JSON, the outputs say %d", len(out)-n, size)
		}
	})
}
