package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bytesTensor is BYTES elements in the binary extension's layout.
func bytesTensor(vals ...string) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// v2Body is a body with the binary extension: the JSON, then bin; header
// is the Inference-Header-Content-Length to send ("" for the JSON's length).
type v2Body struct {
	json   string
	bin    []byte
	header string
}

func (b v2Body) send(t *testing.T, s *Server, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(append([]byte(b.json), b.bin...)))
	switch {
	case b.header != "":
		req.Header.Set(headerContentLength, b.header)
	case b.bin != nil:
		req.Header.Set(headerContentLength, strconv.Itoa(len(b.json)))
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// readV2Reply splits a reply with binary outputs into its JSON and the
// outputs' raw bytes, by name.
func readV2Reply(t *testing.T, rec *httptest.ResponseRecorder) (V2InferResponse, map[string][]byte) {
	t.Helper()
	body := rec.Body.Bytes()
	n := len(body)
	if h := rec.Header().Get(headerContentLength); h != "" {
		var err error
		n, err = strconv.Atoi(h)
		require.NoError(t, err)
		assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))
	}
	var out V2InferResponse
	dec := json.NewDecoder(bytes.NewReader(body[:n]))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&out), "%s", body[:n])
	raw := map[string][]byte{}
	off := n
	for _, o := range out.Outputs {
		if o.Parameters != nil && o.Parameters.BinaryDataSize != nil {
			size := int(*o.Parameters.BinaryDataSize)
			raw[o.Name] = body[off : off+size]
			off += size
		}
	}
	assert.Equal(t, len(body), off, "bytes after the outputs")
	return out, raw
}

// v2JSONOutput is an output of a v2 reply in JSON: its name and its data
// elements, each as the reply spells it.
type v2JSONOutput struct {
	Name string            `json:"name"`
	Data []json.RawMessage `json:"data"`
}

// v2JSONOutputs decodes the outputs of a v2 reply in JSON.
func v2JSONOutputs(t *testing.T, rec *httptest.ResponseRecorder) []v2JSONOutput {
	t.Helper()
	var out struct {
		Outputs []v2JSONOutput `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), "%s", rec.Body.Bytes())
	return out.Outputs
}

const (
	q1 = `{"name":"question","shape":[1],"datatype":"BYTES","data":["what was the revenue?"]}`
	c1 = `{"name":"context","shape":[1],"datatype":"BYTES","data":["the revenue was $5 million in 2019."]}`
)

// The binary tensor data extension both ways, on the fuzz server (no model).
func TestV2BinaryData(t *testing.T) {
	s := fuzzServer(t)
	qBin, cBin := bytesTensor("what was the revenue?", "what?"), bytesTensor("the revenue was $5 million in 2019.", "a b c")
	binIn := func(name string, n, size int) string {
		return `{"name":"` + name + `","shape":[` + strconv.Itoa(n) + `],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}`
	}
	body := v2Body{json: `{"id":"x","inputs":[` + binIn("question", 2, len(qBin)) + `,` + binIn("context", 2, len(cBin)) + `],"parameters":{"binary_data_output":true}}`,
		bin: append(append([]byte{}, qBin...), cBin...)}
	rec := body.send(t, s, "/v2/models/a/infer")
	require.Equal(t, 200, rec.Code, "%s", rec.Body.Bytes())
	out, raw := readV2Reply(t, rec)
	assert.Equal(t, "x", out.ID)
	require.Len(t, out.Outputs, 4)
	// The same request in JSON gives the same outputs.
	js := v2Body{json: `{"inputs":[{"name":"question","shape":[2],"datatype":"BYTES","data":["what was the revenue?","what?"]},` +
		`{"name":"context","shape":[2],"datatype":"BYTES","data":["the revenue was $5 million in 2019.","a b c"]}]}`}
	rec = js.send(t, s, "/v2/models/a/versions/1/infer")
	require.Equal(t, 200, rec.Code, "%s", rec.Body.Bytes())
	for _, o := range v2JSONOutputs(t, rec) {
		var got []byte
		for _, d := range o.Data {
			switch o.Name {
			case "answer":
				var s string
				require.NoError(t, json.Unmarshal(d, &s))
				got = append(got, bytesTensor(s)...)
			case "score":
				f, err := strconv.ParseFloat(string(d), 32)
				require.NoError(t, err)
				got = binary.LittleEndian.AppendUint32(got, math.Float32bits(float32(f)))
			default:
				x, err := strconv.ParseInt(string(d), 10, 64)
				require.NoError(t, err)
				got = binary.LittleEndian.AppendUint64(got, uint64(x))
			}
		}
		assert.Equal(t, got, raw[o.Name], "output %s", o.Name)
	}
	// One output binary, one in JSON, as each asks.
	mixed := v2Body{json: `{"inputs":[` + q1 + `,` + c1 + `],"outputs":[{"name":"start","parameters":{"binary_data":true}},{"name":"answer","parameters":{"binary_data":false}}]}`}
	rec = mixed.send(t, s, "/v2/models/b/infer")
	require.Equal(t, 200, rec.Code, "%s", rec.Body.Bytes())
	out, raw = readV2Reply(t, rec)
	require.Len(t, out.Outputs, 2)
	assert.Len(t, raw["start"], 8)
	assert.NotNil(t, out.Outputs[1].Data)
}

// What the v2 infer refuses, with the error naming it.
func TestV2InferRefusals(t *testing.T) {
	s := fuzzServer(t)
	q := bytesTensor("what?")
	binQ := `{"name":"question","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(len(q)) + `}}`
	cases := []struct {
		name   string
		path   string
		body   v2Body
		status int
		msg    string
	}{
		{"header past the body", "/v2/models/a/infer", v2Body{json: `{"inputs":[]}`, header: "99"}, 400, "Inference-Header-Content-Length"},
		{"header not a number", "/v2/models/a/infer", v2Body{json: `{"inputs":[]}`, header: "x"}, 400, "Inference-Header-Content-Length"},
		{"binary size past the data", "/v2/models/a/infer", v2Body{json: `{"inputs":[` + binQ + `,` + c1 + `]}`, bin: q[:5]}, 400, "bytes of binary data are left"},
		{"binary bytes left over", "/v2/models/a/infer", v2Body{json: `{"inputs":[` + binQ + `,` + c1 + `]}`, bin: append(append([]byte{}, q...), 1, 2)}, 400, "add up to"},
		{"element length past the data", "/v2/models/a/infer", v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}},` + c1 + `]}`, bin: []byte{9, 0, 0, 0, 'a', 'b'}}, 400, "length 9"},
		{"not UTF-8", "/v2/models/a/infer", v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}},` + c1 + `]}`, bin: []byte{1, 0, 0, 0, 0xff}}, 400, "not UTF-8"},
		{"data and binary", "/v2/models/a/infer", v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":["q"],"parameters":{"binary_data_size":` + strconv.Itoa(len(q)) + `}},` + c1 + `]}`, bin: q}, 400, "give one"},
		{"no data", "/v2/models/a/infer", v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES"},` + c1 + `]}`}, 400, `has no "data"`},
		{"request parameter", "/v2/models/a/infer", v2Body{json: `{"inputs":[` + q1 + `,` + c1 + `],"parameters":{"priority":1}}`}, 400, "not supported: the request parameter priority"},
		{"output parameter", "/v2/models/a/infer", v2Body{json: `{"inputs":[` + q1 + `,` + c1 + `],"outputs":[{"name":"answer","parameters":{"classification":2}}]}`}, 400, "not supported: the output parameter classification"},
		{"input parameter", "/v2/models/a/infer", v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":["q"],"parameters":{"shared_memory_region":"r"}},` + c1 + `]}`}, 400, "not supported: the input parameter shared_memory_region"},
		{"model_name of another", "/v2/models/a/infer", v2Body{json: `{"model_name":"b","inputs":[` + q1 + `,` + c1 + `]}`}, 400, `"model_name" is "b" but the path names the model "a"`},
		{"model_version 2", "/v2/models/a/infer", v2Body{json: `{"model_version":"2","inputs":[` + q1 + `,` + c1 + `]}`}, 404, `unknown version "2"`},
		{"model_version against the path", "/v2/models/a/versions/1/infer", v2Body{json: `{"model_version":"3","inputs":[` + q1 + `,` + c1 + `]}`}, 400, `the path names version "1"`},
		{"path version 2", "/v2/models/a/versions/2/infer", v2Body{json: `{"inputs":[` + q1 + `,` + c1 + `]}`}, 404, `unknown version "2" of model "a"`},
		{"unknown model", "/v2/models/zz/infer", v2Body{json: `{"inputs":[` + q1 + `,` + c1 + `]}`}, 404, `unknown model "zz"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.body.send(t, s, tc.path)
			require.Equal(t, tc.status, rec.Code, "%s", rec.Body.Bytes())
			var e map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			assert.Contains(t, e["error"], tc.msg)
		})
	}
	// A compressed body is refused by name.
	req := httptest.NewRequest(http.MethodPost, "/v2/models/a/infer", strings.NewReader("x"))
	req.Header.Set("Content-Encoding", "gzip")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnsupportedMediaType, rec.Code)
	assert.Contains(t, rec.Body.String(), `Content-Encoding \"gzip\" is not supported`)
}

// id, model_name and model_version are accepted as the protocol has them.
func TestV2RequestFields(t *testing.T) {
	s := fuzzServer(t)
	for _, path := range []string{"/v2/models/a/infer", "/v2/models/a/versions/1/infer"} {
		body := v2Body{json: `{"id":"req-7","model_name":"a","model_version":"1","inputs":[` + q1 + `,` + c1 + `]}`}
		rec := body.send(t, s, path)
		require.Equal(t, 200, rec.Code, "%s: %s", path, rec.Body.Bytes())
		out, _ := readV2Reply(t, rec)
		assert.Equal(t, V2InferResponse{ModelName: "a", ModelVersion: "1", ID: "req-7"}, V2InferResponse{ModelName: out.ModelName, ModelVersion: out.ModelVersion, ID: out.ID})
	}
}

// The document's non-blank pattern is strings.TrimSpace's rule exactly.
func TestNonBlankPattern(t *testing.T) {
	re := regexp.MustCompile(nonBlank)
	for r := rune(0); r <= 0x3100; r++ {
		s := string(r)
		assert.Equal(t, strings.TrimSpace(s) != "", re.MatchString(s), "U+%04X", r)
	}
	assert.True(t, unicode.IsSpace('\u0085'))
	assert.Equal(t, `[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`, jsRegexp(nonBlank))
}

// The document a server serves says whether its routes need a token: with
// auth tokens the user routes require one, without them a token is optional.
func TestOpenAPISecurityFollowsAuth(t *testing.T) {
	security := func(doc []byte, path, method string) []map[string][]string {
		var d struct {
			Paths map[string]map[string]struct {
				Security []map[string][]string `json:"security"`
			} `json:"paths"`
		}
		require.NoError(t, json.Unmarshal(doc, &d))
		return d.Paths[path][method].Security
	}
	lim := limits{maxContext: 10, maxBatchItems: 2, maxTopK: 3}
	bearer, optional := map[string][]string{"bearer": {}}, map[string][]string{}
	cases := []struct {
		name            string
		userAuth, mAuth bool
		answer, metrics []map[string][]string
	}{
		{"no auth", false, false, []map[string][]string{bearer, optional}, []map[string][]string{bearer, optional}},
		{"auth", true, false, []map[string][]string{bearer}, []map[string][]string{bearer, optional}},
		{"auth and metrics auth", true, true, []map[string][]string{bearer}, []map[string][]string{bearer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := openAPI(lim, tc.userAuth, tc.mAuth)
			assert.Equal(t, tc.answer, security(doc, pathAnswer, "post"))
			assert.Equal(t, tc.answer, security(doc, pathV2Model+"/infer", "post"))
			assert.Equal(t, tc.metrics, security(doc, pathMetrics, "get"))
			assert.Equal(t, []map[string][]string{bearer}, security(doc, pathAdapters, "post"))
			assert.Nil(t, security(doc, "/v2/health/ready", "get"))
		})
	}
}

// Triton's extensions that tritonclient calls are refused by name.
func TestV2TritonExtensionsNamed(t *testing.T) {
	s := fuzzServer(t)
	cases := []struct{ method, path, ext string }{
		{"GET", "/v2/models/a/config", "model configuration"},
		{"GET", "/v2/models/a/versions/1/config", "model configuration"},
		{"GET", "/v2/models/a/stats", "statistics"},
		{"GET", "/v2/models/stats", "statistics"},
		{"POST", "/v2/repository/index", "model repository"},
		{"POST", "/v2/repository/models/a/load", "model repository"},
		{"GET", "/v2/systemsharedmemory/status", "shared-memory"},
		{"GET", "/v2/cudasharedmemory/status", "shared-memory"},
		{"GET", "/v2/trace/setting", "trace"},
		{"GET", "/v2/logging", "logging"},
		{"POST", "/v2/models/a/generate", "generate"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
			assert.Equal(t, http.StatusNotFound, rec.Code)
			assert.Contains(t, rec.Body.String(), "not supported: Triton's "+tc.ext+" extension (GET /v2 lists the extensions served: binary_tensor_data)")
		})
	}
}
