package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/faults"
)

// badRequests are requests the server must refuse, each with its status and
// a piece of its error message (docs/serve.md lists them).
var badRequests = []struct {
	name, method, path, body string
	status                   int
	msg                      string
}{
	{"wrong method", "GET", pathAnswer, "", 405, "method GET is not allowed on /v1/answer; use POST"},
	{"unknown path", "POST", "/v1/answers", `{}`, 404, "no endpoint /v1/answers"},
	{"empty body", "POST", pathAnswer, "", 400, "the request body is empty"},
	{"malformed JSON", "POST", pathAnswer, `{"question": "q", "context": `, 400, "malformed JSON"},
	{"not JSON", "POST", pathAnswer, `question=q&context=c`, 400, "malformed JSON at byte 1"},
	{"trailing data", "POST", pathAnswer, `{"question":"q","context":"c"} {}`, 400, "data after the request's end"},
	{"array for an object", "POST", pathAnswer, `[{"question":"q","context":"c"}]`, 400, "wrong type: want an object, got JSON array"},
	{"question a number", "POST", pathAnswer, `{"question":42,"context":"c"}`, 400, `wrong type for "question": want a string, got JSON number`},
	{"context a number", "POST", pathAnswer, `{"question":"q","context":5}`, 400, `wrong type for "context": want a string, got JSON number`},
	{"top_k a string", "POST", pathAnswer, `{"question":"q","context":"c","top_k":"3"}`, 400, `wrong type for "top_k": want an integer, got JSON string`},
	{"top_k a fraction", "POST", pathAnswer, `{"question":"q","context":"c","top_k":1.5}`, 400, `wrong type for "top_k"`},
	{"top_k zero", "POST", pathAnswer, `{"question":"q","context":"c","top_k":0}`, 400, `"top_k" is 0; it must be between 1 and 20`},
	{"top_k too big", "POST", pathAnswer, `{"question":"q","context":"c","top_k":21}`, 400, `"top_k" is 21`},
	{"missing question", "POST", pathAnswer, `{"context":"c"}`, 400, `"question" is missing or empty`},
	{"blank question", "POST", pathAnswer, `{"question":"  \n","context":"c"}`, 400, `"question" is missing or empty`},
	{"missing context", "POST", pathAnswer, `{"question":"q"}`, 400, `"context" is missing or empty`},
	{"null context", "POST", pathAnswer, `{"question":"q","context":null}`, 400, `"context" is missing or empty`},
	{"unknown field", "POST", pathAnswer, `{"question":"q","context":"c","questoin":"x"}`, 400, `unknown field "questoin"`},
	{"empty adapter", "POST", pathAnswer, `{"question":"q","context":"c","adapter":""}`, 400, `"adapter" is empty`},
	{"unknown adapter", "POST", pathAnswer, `{"question":"q","context":"c","adapter":"nope"}`, 404, `unknown adapter "nope"`},
	{"context too long", "POST", pathAnswer, `{"question":"q","context":"` + strings.Repeat("é", 201) + `"}`, 413, "the context has 201 characters; the limit is 200"},
	{"body too large", "POST", pathAnswer, `{"question":"q","context":"` + strings.Repeat("x", 5000) + `"}`, 413, "the limit is 4096"},
	{"question longer than a window", "POST", pathAnswer, `{"question":"` + strings.Repeat("why ", 150) + `","context":"c"}`, 422, "cannot cut the context into windows"},
	{"batch not an array", "POST", pathBatch, `{"question":"q","context":"c"}`, 400, "wrong type: want an array, got JSON object"},
	{"batch empty", "POST", pathBatch, `[]`, 400, "the batch is empty"},
	{"batch null", "POST", pathBatch, `null`, 400, "want a JSON array of requests, got null"},
	{"batch too many", "POST", pathBatch, "[" + strings.Repeat(`{"question":"q","context":"c"},`, 4) + `{"question":"q","context":"c"}]`, 413, "the batch holds 5 requests; the limit is 4"},
	{"batch bad item", "POST", pathBatch, `[{"question":"q","context":"c"},{"question":"q"}]`, 400, `request 1: "context" is missing or empty`},
	{"batch unknown adapter", "POST", pathBatch, `[{"question":"q","context":"c"},{"question":"q","context":"c","adapter":"x"}]`, 404, `request 1: unknown adapter "x"`},
	{"metrics by POST", "POST", pathMetrics, `{}`, 405, "use GET, HEAD"},
}

// Every bad request gets its 4xx and a JSON {"error": ...}; the server
// answers a good request afterwards.
func TestServeBadRequests(t *testing.T) {
	_, fix := tinyFixture(t)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.MaxBody, o.Server.MaxContext, o.Server.MaxBatchItems = 4096, 200, 4
	_, hs := startServer(t, o)
	require.GreaterOrEqual(t, len(badRequests), 10)
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err := hs.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, "%s", b)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e map[string]any
			require.NoError(t, json.Unmarshal(b, &e), "%s", b)
			assert.Len(t, e, 1, "%s", b)
			msg, _ := e["error"].(string)
			assert.Contains(t, msg, tc.msg)
			if tc.status == 405 {
				assert.NotEmpty(t, resp.Header.Get("Allow"))
			}
		})
	}
	// A chunked body (no Content-Length) over the limit.
	big := io.MultiReader(strings.NewReader(`{"question":"q","context":"`), strings.NewReader(strings.Repeat("x", 5000)), strings.NewReader(`"}`))
	resp, err := hs.Client().Post(hs.URL+pathAnswer, "application/json", big)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.JSONEq(t, `{"error":"the body is larger than the limit of 4096 bytes"}`, string(b))

	q := Query{Question: "What was the revenue?", Context: "The revenue was $5 million in 2019."}
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 2))
	require.Equal(t, http.StatusOK, code, "%s", b)
	r := decodeAnswer(t, b)
	assert.Equal(t, "fix", r.Adapter)
	require.Len(t, r.Answers, 2)
	assert.Equal(t, []rune(q.Context)[r.Answers[0].Start:r.Answers[0].End], []rune(r.Answers[0].Answer))
}

// A full queue answers 429 with Retry-After; the queued requests are
// answered once the worker is free again.
func TestServeQueueFull(t *testing.T) {
	_, fix := tinyFixture(t)
	release, entered := make(chan struct{}), make(chan struct{}, 16)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Queue, o.MaxBatch, o.BatchWindow = 2, 1, 0
	s, hs := startServer(t, o)
	t.Cleanup(faults.SetBeforeCycle(s.Engine(), func() { entered <- struct{}{}; <-release }))
	body := requestBody(t, Query{Question: "When?", Context: "It happened in 2019."}, "", 1)
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := post(t, hs.Client(), hs.URL+pathAnswer, body)
			codes <- code
		}()
		if i == 0 {
			<-entered // the first is in the worker; the next two fill the queue
		}
	}
	waitFor(t, func() bool { return s.gauges().queueDepth == 2 })
	code, b, h := post(t, hs.Client(), hs.URL+pathAnswer, body)
	assert.Equal(t, http.StatusTooManyRequests, code)
	assert.Equal(t, "1", h.Get("Retry-After"))
	assert.Contains(t, string(b), "the queue is full (2 of 2 queries waiting)")
	// A batch that does not fit is refused whole.
	code, _, _ = post(t, hs.Client(), hs.URL+pathBatch, "["+body+"]")
	assert.Equal(t, http.StatusTooManyRequests, code)
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	code, _, _ = post(t, hs.Client(), hs.URL+pathAnswer, body)
	assert.Equal(t, http.StatusOK, code)
}

// A request that waits longer than the timeout gets 504; the worker skips
// it and the server goes on.
func TestServeTimeout(t *testing.T) {
	_, fix := tinyFixture(t)
	release := make(chan struct{})
	var once sync.Once
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.Timeout = 300 * time.Millisecond
	s, hs := startServer(t, o)
	t.Cleanup(faults.SetBeforeCycle(s.Engine(), func() { once.Do(func() { <-release }) }))
	body := requestBody(t, Query{Question: "When?", Context: "It happened in 2019."}, "", 1)
	start := time.Now()
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, body)
	assert.Equal(t, http.StatusGatewayTimeout, code)
	assert.Contains(t, string(b), "no answer within the request timeout of 300ms")
	assert.Less(t, time.Since(start), 5*time.Second)
	close(release)
	code, b, _ = post(t, hs.Client(), hs.URL+pathAnswer, body)
	assert.Equal(t, http.StatusOK, code, "%s", b)
}

// Options that cannot work are refused at load time, with the reason.
func TestNewRefusesBadOptions(t *testing.T) {
	_, fix := tinyFixture(t)
	cases := map[string]struct {
		mod  func(o *testOptions)
		want string // what the error must say
	}{
		"adapter name":   {func(o *testOptions) { o.Adapters[0].Name = "a b" }, "adapter name \"a b\": use letters, digits"},
		"duplicate name": {func(o *testOptions) { o.Adapters = append(o.Adapters, o.Adapters[0]) }, "adapter name \"fix\" is given twice"},
		"queue":          {func(o *testOptions) { o.Queue = 0 }, "queue 0"},
		"timeout":        {func(o *testOptions) { o.Server.Timeout = 0 }, "timeout 0s must be positive"},
		"windows":        {func(o *testOptions) { o.Features.DocStride = 200 }, "doc_stride 200 leaves no room"},
		"past positions": {func(o *testOptions) { o.Features.MaxSeqLength = 256 }, "max_seq_length 256 is longer than the model's max_position_embeddings 128"},
		"missing dir":    {func(o *testOptions) { o.Adapters[0].Dir = t.TempDir() }, "adapter_config.json: no such file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
			c.mod(&o)
			s, err := loadServer(context.Background(), o)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// The base model alone (no adapter) serves too; naming an adapter is a 404.
func TestServeBaseOnly(t *testing.T) {
	_, hs := startServer(t, tinyServerOptions(t))
	q := Query{Question: "When?", Context: "It happened in 2019."}
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 1))
	require.Equal(t, http.StatusOK, code, "%s", b)
	assert.Equal(t, "", decodeAnswer(t, b).Adapter)
	code, b, _ = post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "fix", 1))
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, string(b), "base model only")
	_, b, _ = getURL(t, hs.URL+pathAdapters)
	assert.Contains(t, string(b), `"adapters":[]`)
}
