package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/adaptertest"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/torch"
)

const (
	userToken  = "user-token-0123456789abcdef"
	adminToken = "admin-token-fedcba9876543210"
)

// call sends a request with an optional bearer token and headers.
func call(t *testing.T, client *http.Client, method, url, body, token string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// errorOf decodes a {"error": ...} body (and nothing else).
func errorOf(t *testing.T, b []byte) string {
	t.Helper()
	var e map[string]string
	require.NoError(t, json.Unmarshal(b, &e), "%s", b)
	require.Len(t, e, 1, "%s", b)
	msg, ok := e["error"]
	require.True(t, ok, "%s", b)
	return msg
}

// widerA makes every lora_A one column wider: an adapter for another base.
func widerA(name string, v []float32, shape []int64) ([]float32, []int64) {
	if strings.Contains(name, "lora_A") {
		shape = []int64{shape[0], shape[1] + 1}
		v = make([]float32, shape[0]*shape[1])
	}
	return v, shape
}

// Bearer tokens: every protected route refuses a missing or wrong token with
// 401 JSON, a user token on an admin route with 403; health, the v2 health
// probes, the OpenAPI document and (by default) metrics stay open. No token
// reaches the logs or the metrics.
func TestServeAuth(t *testing.T) {
	_, fix := tinyFixture(t)
	var logs syncBuffer
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.AuthTokens, o.Server.AdminTokens, o.Server.AdapterRoot = []string{userToken, "second-user-token-xxxxxx"}, []string{adminToken}, t.TempDir()
	o.Server.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	s, hs := startServer(t, o)
	good := requestBody(t, Query{Question: "When?", Context: "It happened in 2019."}, "", 1)
	v2 := `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":["When?"]},{"name":"context","shape":[1],"datatype":"BYTES","data":["It happened in 2019."]}]}`
	cases := []struct {
		name, method, path, body, token string
		status                          int
		msg                             string
	}{
		{"answer without token", "POST", pathAnswer, good, "", 401, "missing bearer token"},
		{"answer with a wrong token", "POST", pathAnswer, good, "user-token-0123456789abcdeX", 401, "the bearer token is not valid"},
		{"answer with a prefix of a token", "POST", pathAnswer, good, "user-token", 401, "the bearer token is not valid"},
		{"answer with the user token", "POST", pathAnswer, good, userToken, 200, ""},
		{"answer with the second user token", "POST", pathAnswer, good, "second-user-token-xxxxxx", 200, ""},
		{"answer with the admin token", "POST", pathAnswer, good, adminToken, 200, ""},
		{"batch without token", "POST", pathBatch, "[" + good + "]", "", 401, "missing bearer token"},
		{"adapters list without token", "GET", pathAdapters, "", "", 401, "missing bearer token"},
		{"adapters list with the user token", "GET", pathAdapters, "", userToken, 200, ""},
		{"load without token", "POST", pathAdapters, `{"name":"x","path":"x"}`, "", 401, "missing bearer token"},
		{"load with the user token", "POST", pathAdapters, `{"name":"x","path":"x"}`, userToken, 403, "needs an admin token"},
		{"load with a wrong token", "POST", pathAdapters, `{"name":"x","path":"x"}`, "nope-nope-nope-nope-nope", 401, "not valid"},
		{"unload with the user token", "DELETE", pathAdapters + "/fix", "", userToken, 403, "needs an admin token"},
		{"v2 infer without token", "POST", "/v2/models/fix/infer", v2, "", 401, "missing bearer token"},
		{"v2 infer with the user token", "POST", "/v2/models/fix/infer", v2, userToken, 200, ""},
		{"v2 metadata without token", "GET", "/v2/models/fix", "", "", 401, "missing bearer token"},
		{"healthz open", "GET", pathHealth, "", "", 200, ""},
		{"v2 live open", "GET", "/v2/health/live", "", "", 200, ""},
		{"v2 ready open", "GET", "/v2/health/ready", "", "", 200, ""},
		{"openapi open", "GET", pathOpenAPI, "", "", 200, ""},
		{"metrics open by default", "GET", pathMetrics, "", "", 200, ""},
		{"unknown path is 404 before auth", "GET", "/v1/nope", "", "", 404, "no endpoint /v1/nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, b, h := call(t, hs.Client(), tc.method, hs.URL+tc.path, tc.body, tc.token)
			require.Equal(t, tc.status, code, "%s", b)
			if tc.msg != "" {
				assert.Contains(t, errorOf(t, b), tc.msg)
			}
			if code == 401 {
				assert.Equal(t, `Bearer realm="loraqa"`, h.Get("WWW-Authenticate"))
			}
		})
	}
	// "Basic" is not a bearer token.
	code, _, _ := call(t, hs.Client(), "POST", hs.URL+pathAnswer, good, "", "Authorization", "Basic "+userToken)
	assert.Equal(t, 401, code)

	// With MetricsAuth, /metrics needs a token too.
	s.opt.MetricsAuth = true
	code, b, _ := call(t, hs.Client(), "GET", hs.URL+pathMetrics, "", "")
	assert.Equal(t, 401, code)
	code, metrics, _ := call(t, hs.Client(), "GET", hs.URL+pathMetrics, "", userToken)
	assert.Equal(t, 200, code, "%s", b)
	assert.Contains(t, string(metrics), `loraqa_http_requests_total{path="/v1/answer",code="401"}`)

	for _, tok := range []string{userToken, adminToken, "second-user-token", "user-token-0123456789abcdeX"} {
		assert.NotContains(t, logs.String(), tok, "a token in the logs")
		assert.NotContains(t, string(metrics), tok, "a token in the metrics")
	}
	assert.Contains(t, logs.String(), `"status":401`)
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A server without admin tokens refuses every adapter change.
func TestServeAdminOff(t *testing.T) {
	_, fix := tinyFixture(t)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.AdapterRoot = t.TempDir()
	_, hs := startServer(t, o)
	code, b, _ := call(t, hs.Client(), "POST", hs.URL+pathAdapters, `{"name":"x","path":"x"}`, "")
	assert.Equal(t, 403, code)
	assert.Contains(t, errorOf(t, b), "start serve with --admin-token-file")
	code, b, _ = call(t, hs.Client(), "DELETE", hs.URL+pathAdapters+"/fix", "", adminToken)
	assert.Equal(t, 403, code)
	assert.Contains(t, errorOf(t, b), "changing adapters is off")
}

func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text string
		want       []string
		err        string
	}{
		{"two tokens, comments and blanks", "# users\n" + userToken + "\n\n  " + adminToken + "  \n", []string{userToken, adminToken}, ""},
		{"CRLF", userToken + "\r\n", []string{userToken}, ""},
		{"empty", "\n# nothing\n", nil, "holds no token"},
		{"too short", "short\n", nil, "line 1: a token must be at least 16 characters"},
		{"space inside", "abcdefgh ijklmnopq\n", nil, "without spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			require.NoError(t, os.WriteFile(p, []byte(tc.text), 0o600))
			got, err := ReadTokens(p)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.NotContains(t, err.Error(), "abcdefgh")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := ReadTokens(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "token file")
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr           string
		auth, insecure bool
		err            string
	}{
		{"127.0.0.1:8080", false, false, ""},
		{"[::1]:8080", false, false, ""},
		{"localhost:8080", false, false, ""},
		{"0.0.0.0:8080", false, false, "beyond this machine, and no --auth-token-file"},
		{":8080", false, false, "every interface"},
		{"10.1.2.3:8080", false, false, "--insecure"},
		{"myhost:8080", false, false, "--auth-token-file"},
		{"0.0.0.0:8080", true, false, ""},
		{"0.0.0.0:8080", false, true, ""},
		{"nonsense", false, false, "missing port"},
	}
	for _, tc := range cases {
		err := CheckListen(tc.addr, tc.auth, tc.insecure)
		if tc.err == "" {
			assert.NoError(t, err, tc.addr)
		} else {
			assert.ErrorContains(t, err, tc.err, tc.addr)
		}
	}
}

// Adapters load and unload while the server runs: paths that leave the root
// are refused, an adapter that does not fit the base is refused and the
// server goes on, a loaded adapter answers as predict does with it, an
// unload answers the requests queued for it first, then frees its tensors.
func TestServeAdaptersAtRunTime(t *testing.T) {
	_, fix := tinyFixture(t)
	root, outside := t.TempDir(), t.TempDir()
	adaptertest.Rewrite(t, fix, filepath.Join(root, "team", "other"), adaptertest.ScaleB(-4))
	adaptertest.Rewrite(t, fix, filepath.Join(root, "wide"), widerA)
	adaptertest.Rewrite(t, fix, filepath.Join(outside, "secret"), adaptertest.ScaleB(2))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")))
	require.NoError(t, os.Symlink(filepath.Join(root, "team", "other"), filepath.Join(root, "inside-link")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "afile"), []byte("x"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "empty"), 0o755))

	qs := testQueries(t, 4)
	wantFix := expectedAnswers(t, tinyPredictor(t, fix, false), qs, 1)
	wantOther := expectedAnswers(t, tinyPredictor(t, filepath.Join(root, "team", "other"), false), qs, 1)
	require.NotEqual(t, wantFix, wantOther, "the adapters answer alike: the test would prove nothing")

	var armed atomic.Bool
	entered, release := make(chan struct{}, 16), make(chan struct{})
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.AdminTokens, o.Server.AdapterRoot = []string{adminToken}, root
	o.MaxBatch, o.BatchWindow = 1, 0
	s, hs := startServer(t, o)
	t.Cleanup(faults.SetBeforeCycle(s.Engine(), func() {
		if armed.Load() {
			entered <- struct{}{}
			<-release
		}
	}))
	c := hs.Client()
	before := torch.LiveTensors()

	refusals := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"dot-dot", `{"name":"b","path":"../x"}`, 400, `"path" "../x" holds a '..' element`},
		{"dot-dot inside", `{"name":"b","path":"team/../../x"}`, 400, "holds a '..' element"},
		{"absolute", `{"name":"b","path":"` + filepath.Join(root, "team", "other") + `"}`, 400, "is absolute"},
		{"symlink out", `{"name":"b","path":"escape"}`, 403, "through a symbolic link"},
		{"missing dir", `{"name":"b","path":"nope"}`, 404, "no such directory under the adapter root"},
		{"a file", `{"name":"b","path":"afile"}`, 422, "is not a directory"},
		{"no adapter in dir", `{"name":"b","path":"empty"}`, 422, "adapter config"},
		{"shapes do not fit", `{"name":"b","path":"wide"}`, 422, "does not fit the base model"},
		{"bad name", `{"name":"a b","path":"team/other"}`, 400, `"name" "a b"`},
		{"missing name", `{"path":"team/other"}`, 400, `"name" is missing`},
		{"missing path", `{"name":"b"}`, 400, `"path" is missing`},
		{"name taken", `{"name":"fix","path":"team/other"}`, 409, "already served"},
		{"unknown field", `{"name":"b","path":"team/other","dir":"x"}`, 400, `unknown field "dir"`},
		{"malformed", `{"name":`, 400, "malformed JSON"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			code, b, _ := call(t, c, "POST", hs.URL+pathAdapters, tc.body, adminToken)
			require.Equal(t, tc.status, code, "%s", b)
			msg := errorOf(t, b)
			assert.Contains(t, msg, tc.msg)
			assert.NotContains(t, msg, outside, "the error shows a server directory")
			// The server goes on answering, right.
			code, b, _ = post(t, c, hs.URL+pathAnswer, requestBody(t, qs[0], "", 1))
			require.Equal(t, 200, code, "%s", b)
			assert.Equal(t, wantFix[0], decodeAnswer(t, b).Answers)
		})
	}
	assert.Equal(t, before, torch.LiveTensors(), "a refused adapter left tensors")

	// Load through a symlink that stays inside the root.
	code, b, _ := call(t, c, "POST", hs.URL+pathAdapters, `{"name":"b","path":"inside-link"}`, adminToken)
	require.Equal(t, 201, code, "%s", b)
	var info adapterInfo
	require.NoError(t, json.Unmarshal(b, &info))
	assert.Equal(t, adapterInfo{Name: "b", Dir: filepath.Join(s.opt.AdapterRoot, "team", "other"), R: 4, LoraAlpha: 8, TargetModules: info.TargetModules}, info)
	code, b, _ = getURL(t, hs.URL+pathAdapters)
	require.Equal(t, 200, code)
	assert.Contains(t, string(b), `"name":"b"`)
	for i, q := range qs {
		for _, name := range []string{"b", "fix"} {
			code, b, _ := post(t, c, hs.URL+pathAnswer, requestBody(t, q, name, 1))
			require.Equal(t, 200, code, "%s", b)
			want := map[string][][]Answer{"b": wantOther, "fix": wantFix}[name]
			assert.Equal(t, want[i], decodeAnswer(t, b).Answers, "query %d adapter %s", i, name)
		}
	}

	// Unloading: refusals first.
	code, b, _ = call(t, c, "DELETE", hs.URL+pathAdapters+"/fix", "", adminToken)
	assert.Equal(t, 409, code)
	assert.Contains(t, errorOf(t, b), "is the default")
	code, b, _ = call(t, c, "DELETE", hs.URL+pathAdapters+"/nope", "", adminToken)
	assert.Equal(t, 404, code)
	assert.Contains(t, errorOf(t, b), `unknown adapter "nope"`)

	// One request for b in the worker (held), two queued, then the unload.
	armed.Store(true)
	type result struct {
		i, code int
		body    []byte
	}
	results := make(chan result, 3)
	for i := range 3 {
		go func() {
			code, b, _ := post(t, c, hs.URL+pathAnswer, requestBody(t, qs[i], "b", 1))
			results <- result{i, code, b}
		}()
		if i == 0 {
			<-entered
		}
	}
	waitFor(t, func() bool { return s.gauges().queueDepth == 2 })
	armed.Store(false)
	unloaded := make(chan int, 1)
	go func() {
		code, _, _ := call(t, c, "DELETE", hs.URL+pathAdapters+"/b", "", adminToken)
		unloaded <- code
	}()
	waitFor(t, func() bool { return s.gauges().queueDepth == 3 }) // the control job queued after them
	code, b, _ = post(t, c, hs.URL+pathAnswer, requestBody(t, qs[0], "b", 1))
	assert.Equal(t, 404, code, "a new request for an adapter being unloaded")
	assert.Contains(t, errorOf(t, b), `unknown adapter "b"`)
	close(release)
	for range 3 {
		r := <-results
		require.Equal(t, 200, r.code, "%s", r.body)
		assert.Equal(t, wantOther[r.i], decodeAnswer(t, r.body).Answers, "queued query %d", r.i)
	}
	assert.Equal(t, 200, <-unloaded)
	code, _, _ = post(t, c, hs.URL+pathAnswer, requestBody(t, qs[0], "b", 1))
	assert.Equal(t, 404, code)
	assert.Equal(t, before, torch.LiveTensors(), "the unloaded adapter's tensors were not freed")
	code, b, _ = post(t, c, hs.URL+pathAnswer, requestBody(t, qs[1], "", 1))
	require.Equal(t, 200, code, "%s", b)
	assert.Equal(t, wantFix[1], decodeAnswer(t, b).Answers)

	// The name can be loaded again.
	code, b, _ = call(t, c, "POST", hs.URL+pathAdapters, `{"name":"b","path":"team/other"}`, adminToken)
	require.Equal(t, 201, code, "%s", b)
	code, b, _ = post(t, c, hs.URL+pathAnswer, requestBody(t, qs[2], "b", 1))
	require.Equal(t, 200, code, "%s", b)
	assert.Equal(t, wantOther[2], decodeAnswer(t, b).Answers)
}

// Loading is off without an adapter root.
func TestServeLoadNeedsRoot(t *testing.T) {
	_, fix := tinyFixture(t)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.AdminTokens = []string{adminToken}
	_, hs := startServer(t, o)
	code, b, _ := call(t, hs.Client(), "POST", hs.URL+pathAdapters, `{"name":"b","path":"x"}`, adminToken)
	assert.Equal(t, 403, code)
	assert.Contains(t, errorOf(t, b), "--adapter-root")
}

// The Open Inference Protocol v2, with requests written as the protocol's
// published examples are (KServe's "Inference Request JSON Object").
func TestServeV2(t *testing.T) {
	fix, qs, want := fixtureAnswers(t, 3)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.MaxBatchItems = 3
	_, hs := startServer(t, o)
	c := hs.Client()

	for _, p := range []string{"/v2/health/live", "/v2/health/ready"} {
		code, _, _ := getURL(t, hs.URL+p)
		assert.Equal(t, 200, code, p)
	}
	code, b, _ := getURL(t, hs.URL+"/v2/models/fix")
	require.Equal(t, 200, code, "%s", b)
	assert.JSONEq(t, `{"name":"fix","versions":["1"],"platform":"loraqa_extractive_qa",
		"inputs":[{"name":"question","datatype":"BYTES","shape":[-1]},{"name":"context","datatype":"BYTES","shape":[-1]},
			{"name":"passages","datatype":"BYTES","shape":[-1,-1]}],
		"outputs":[{"name":"answer","datatype":"BYTES","shape":[-1]},{"name":"score","datatype":"FP32","shape":[-1]},
		           {"name":"start","datatype":"INT64","shape":[-1]},{"name":"end","datatype":"INT64","shape":[-1]},
		           {"name":"passage","datatype":"INT64","shape":[-1]},{"name":"no_answer","datatype":"BOOL","shape":[-1]}]}`, string(b))
	code, b, _ = getURL(t, hs.URL+"/v2/models/fix/ready")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"name":"fix","ready":true}`, string(b))
	code, b, _ = getURL(t, hs.URL+"/v2/models/nope")
	assert.Equal(t, 404, code)
	assert.Contains(t, errorOf(t, b), `unknown model "nope"`)

	str := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	questions, contexts := make([]string, len(qs)), make([]string, len(qs))
	for i, q := range qs {
		questions[i], contexts[i] = q.Question, q.Context
	}
	body := `{
	  "id" : "42",
	  "inputs" : [
	    {"name" : "question", "shape" : [3], "datatype" : "BYTES", "data" : ` + str(questions) + `},
	    {"name" : "context", "shape" : [3], "datatype" : "BYTES", "data" : ` + str(contexts) + `}
	  ]
	}`
	code, b, _ = call(t, c, "POST", hs.URL+"/v2/models/fix/infer", body, "")
	require.Equal(t, 200, code, "%s", b)
	answers, scores, starts, ends := []string{}, []float32{}, []int64{}, []int64{}
	for _, w := range want {
		answers, scores = append(answers, w[0].Answer), append(scores, float32(w[0].Score))
		starts, ends = append(starts, int64(w[0].Start)), append(ends, int64(w[0].End))
	}
	wantBody := `{"model_name":"fix","model_version":"1","id":"42","outputs":[
	  {"name":"answer","shape":[3],"datatype":"BYTES","data":` + str(answers) + `},
	  {"name":"score","shape":[3],"datatype":"FP32","data":` + str(scores) + `},
	  {"name":"start","shape":[3],"datatype":"INT64","data":` + str(starts) + `},
	  {"name":"end","shape":[3],"datatype":"INT64","data":` + str(ends) + `}]}`
	assert.JSONEq(t, wantBody, string(b))

	// One question, shape [1, 1], only the answer asked for.
	one := `{"inputs":[{"name":"question","shape":[1,1],"datatype":"BYTES","data":[` + str(questions[1]) + `]},` +
		`{"name":"context","shape":[1,1],"datatype":"BYTES","data":[` + str(contexts[1]) + `]}],"outputs":[{"name":"answer"}]}`
	code, b, _ = call(t, c, "POST", hs.URL+"/v2/models/fix/infer", one, "")
	require.Equal(t, 200, code, "%s", b)
	assert.JSONEq(t, `{"model_name":"fix","model_version":"1","id":"","outputs":[{"name":"answer","shape":[1],"datatype":"BYTES","data":[`+str(answers[1])+`]}]}`, string(b))

	in := func(name, dtype, shape, data string) string {
		return `{"name":"` + name + `","shape":` + shape + `,"datatype":"` + dtype + `","data":` + data + `}`
	}
	q1, c1 := in("question", "BYTES", "[1]", `["When?"]`), in("context", "BYTES", "[1]", `["In 2019."]`)
	bad := []struct {
		name, model, body string
		status            int
		msg               string
	}{
		{"no inputs", "fix", `{"inputs":[]}`, 400, `"inputs" is missing or empty`},
		{"missing context", "fix", `{"inputs":[` + q1 + `]}`, 400, `input "context" (or "passages") is missing`},
		{"FP32 question", "fix", `{"inputs":[` + in("question", "FP32", "[1]", "[1.5]") + `,` + c1 + `]}`, 400, `inputs[0]: input "question" has datatype "FP32"; it must be BYTES`},
		{"numbers as BYTES", "fix", `{"inputs":[` + in("question", "BYTES", "[1]", "[1]") + `,` + c1 + `]}`, 400, `"data" must be a flat list of strings`},
		{"nested data", "fix", `{"inputs":[` + in("question", "BYTES", "[1,1]", `[["When?"]]`) + `,` + c1 + `]}`, 400, "flat list of strings"},
		{"shape and data disagree", "fix", `{"inputs":[` + in("question", "BYTES", "[2]", `["a"]`) + `,` + c1 + `]}`, 400, "(2 elements) but 1 data elements"},
		{"shapes disagree", "fix", `{"inputs":[` + in("question", "BYTES", "[2]", `["a","b"]`) + `,` + c1 + `]}`, 400, "but the other input has shape [2]"},
		{"bad shape", "fix", `{"inputs":[` + in("question", "BYTES", "[1,2]", `["a","b"]`) + `,` + c1 + `]}`, 400, "want [N] or [N, 1]"},
		{"unknown input", "fix", `{"inputs":[` + q1 + `,` + c1 + `,` + in("image", "BYTES", "[1]", `["x"]`) + `]}`, 400, `unknown input "image"`},
		{"input twice", "fix", `{"inputs":[` + q1 + `,` + q1 + `]}`, 400, `input "question" is given twice`},
		{"unknown output", "fix", `{"inputs":[` + q1 + `,` + c1 + `],"outputs":[{"name":"logits"}]}`, 400, `outputs[0]: unknown output "logits"`},
		{"empty context", "fix", `{"inputs":[` + q1 + `,` + in("context", "BYTES", "[1]", `[""]`) + `]}`, 400, `"context" is missing or empty`},
		{"too many", "fix", `{"inputs":[` + in("question", "BYTES", "[4]", `["a","b","c","d"]`) + `,` + in("context", "BYTES", "[4]", `["a","b","c","d"]`) + `]}`, 413, "the limit is 3"},
		{"malformed", "fix", `{"inputs":[`, 400, "malformed JSON"},
		{"unknown field", "fix", `{"inputs":[` + q1 + `,` + c1 + `],"model":"x"}`, 400, `unknown field "model"`},
		{"unknown model", "nope", `{"inputs":[` + q1 + `,` + c1 + `]}`, 404, `unknown model "nope"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, b, _ := call(t, c, "POST", hs.URL+"/v2/models/"+tc.model+"/infer", tc.body, "")
			require.Equal(t, tc.status, code, "%s", b)
			assert.Contains(t, errorOf(t, b), tc.msg)
		})
	}
	code, b, _ = call(t, c, "GET", hs.URL+"/v2/models/fix/infer", "", "")
	assert.Equal(t, 405, code)
	assert.Contains(t, errorOf(t, b), "use POST")
}

// A server without adapters is the v2 model "base".
func TestServeV2BaseOnly(t *testing.T) {
	_, hs := startServer(t, tinyServerOptions(t))
	code, b, _ := getURL(t, hs.URL+"/v2/models/base")
	assert.Equal(t, 200, code, "%s", b)
	body := `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":["When?"]},{"name":"context","shape":[1],"datatype":"BYTES","data":["It happened in 2019."]}]}`
	code, b, _ = call(t, hs.Client(), "POST", hs.URL+"/v2/models/base/infer", body, "")
	assert.Equal(t, 200, code, "%s", b)
	assert.Contains(t, string(b), `"model_name":"base"`)
}

// docs/openapi.json is the document the server serves, and it lists exactly
// the routes that exist: each of its operations reaches a handler (no 404
// "no endpoint", no 405), and every route is in it.
// LORAQA_UPDATE_OPENAPI=1 rewrites the file.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	file := filepath.Join(testutil.RepoRoot(t), "docs", "openapi.json")
	if os.Getenv("LORAQA_UPDATE_OPENAPI") == "1" {
		require.NoError(t, os.WriteFile(file, defaultOpenAPI(), 0o644))
	}
	onDisk, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, string(defaultOpenAPI()), string(onDisk), "docs/openapi.json is stale: run LORAQA_UPDATE_OPENAPI=1 go test ./serve -run TestOpenAPIMatchesRoutes")

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(onDisk, &doc))
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	assert.Equal(t, len(routes), n, "operations in the document")
	for _, rt := range routes {
		assert.Contains(t, doc.Paths[rt.pattern], strings.ToLower(rt.method), "route %s %s missing from the document", rt.method, rt.pattern)
	}

	_, fix := tinyFixture(t)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix}))
	code, served, h := getURL(t, hs.URL+pathOpenAPI)
	require.Equal(t, 200, code)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, string(onDisk), string(served))
	for path, ops := range doc.Paths {
		for method := range ops {
			url := hs.URL + strings.NewReplacer("{name}", "fix", "{model}", "fix", "{version}", "1").Replace(path)
			code, b, _ := call(t, hs.Client(), strings.ToUpper(method), url, "{}", "")
			assert.NotEqual(t, 405, code, "%s %s: %s", method, path, b)
			if code == 404 {
				assert.NotContains(t, string(b), "no endpoint", "%s %s", method, path)
			}
		}
	}
}

// Every request is logged as JSON with its id (the client's X-Request-Id,
// else a new one, echoed back either way), adapter, status and latency.
func TestServeRequestLog(t *testing.T) {
	_, fix := tinyFixture(t)
	var logs syncBuffer
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	_, hs := startServer(t, o)
	good := requestBody(t, Query{Question: "When?", Context: "It happened in 2019."}, "", 1)
	code, _, h := call(t, hs.Client(), "POST", hs.URL+pathAnswer, good, "", "X-Request-Id", "req-abc.123")
	require.Equal(t, 200, code)
	assert.Equal(t, "req-abc.123", h.Get("X-Request-Id"))
	code, _, h = call(t, hs.Client(), "POST", hs.URL+pathAnswer, `{"question":`, "", "X-Request-Id", "bad id with spaces")
	require.Equal(t, 400, code)
	made := h.Get("X-Request-Id")
	assert.Regexp(t, `^[0-9a-f]{24}$`, made)

	type line struct {
		Msg       string  `json:"msg"`
		RequestID string  `json:"request_id"`
		Method    string  `json:"method"`
		Path      string  `json:"path"`
		Adapter   string  `json:"adapter"`
		Status    int     `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
	}
	var got []line
	waitFor(t, func() bool { return strings.Count(logs.String(), "\n") >= 2 })
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var x line
		require.NoError(t, json.Unmarshal([]byte(l), &x), l)
		got = append(got, x)
	}
	require.Len(t, got, 2)
	assert.Equal(t, line{Msg: "request", RequestID: "req-abc.123", Method: "POST", Path: pathAnswer, Adapter: "fix", Status: 200, LatencyMS: got[0].LatencyMS}, got[0])
	assert.Positive(t, got[0].LatencyMS)
	assert.Equal(t, made, got[1].RequestID)
	assert.Equal(t, 400, got[1].Status)
}

// A LibTorch failure inside serve (token ids past the embedding's rows: an
// index out of range in LibTorch) fails that request with a 500 JSON error;
// the next request, with the model restored, is answered right. The swaps
// run on the model worker, so they do not race with it.
func TestServeLibTorchFailure(t *testing.T) {
	_, fix := tinyFixture(t)
	s, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix}))
	q := testQueries(t, 1)[0]
	body := requestBody(t, q, "", 1)
	code, want, _ := post(t, hs.Client(), hs.URL+pathAnswer, body)
	require.Equal(t, 200, code, "%s", want)

	var full *ts.Tensor
	require.NoError(t, faults.OnWorker(s.Engine(), func(m *bert.Model) error {
		full = m.WordEmb
		m.WordEmb = full.MustNarrow(0, 0, 5, false) // 5 rows: every real token id is out of range
		return nil
	}))
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, body)
	assert.Equal(t, 500, code, "%s", b)
	msg := errorOf(t, b)
	assert.Contains(t, msg, "libtorch")
	assert.Contains(t, msg, "index out of range")
	assert.NotContains(t, msg, "goroutine", "a Go trace in the reply")
	require.NoError(t, faults.OnWorker(s.Engine(), func(m *bert.Model) error {
		m.WordEmb.MustDrop()
		m.WordEmb = full
		return nil
	}))
	code, b, _ = post(t, hs.Client(), hs.URL+pathAnswer, body)
	require.Equal(t, 200, code, "%s", b)
	assert.Equal(t, decodeAnswer(t, want).Answers, decodeAnswer(t, b).Answers)
}

// Run serves HTTPS with opt.TLS; a token travels inside it.
func TestServeTLS(t *testing.T) {
	_, fix := tinyFixture(t)
	cert, pool := selfSigned(t)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	o.Server.AuthTokens = []string{userToken}
	s, err := loadServer(context.Background(), o)
	require.NoError(t, err)
	defer closeServer(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + ln.Addr().String()
	code, b, _ := call(t, client, "POST", url+pathAnswer, requestBody(t, Query{Question: "When?", Context: "It happened in 2019."}, "", 1), userToken)
	assert.Equal(t, 200, code, "%s", b)
	code, _, _ = call(t, client, "POST", url+pathAnswer, "{}", "")
	assert.Equal(t, 401, code)
	// Plain HTTP to the TLS port gets no answer.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + pathHealth)
	if err == nil {
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode) // Go's "client sent an HTTP request to an HTTPS server"
		resp.Body.Close()
	}
	cancel()
	require.NoError(t, <-ran)
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loraqa test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
