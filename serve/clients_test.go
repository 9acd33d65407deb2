package serve

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// clientResult is what scripts/ref/v2_clients.py reports of one infer (of
// one that failed, the test reads the error, not the status beside it).
type clientResult struct {
	Answers      []string  `json:"answers"`
	Scores       []float64 `json:"scores"`
	Starts       []int     `json:"starts"`
	Ends         []int     `json:"ends"`
	ID           string    `json:"id"`
	ModelVersion string    `json:"model_version"`
	Error        string    `json:"error"`
}

// clientsReport is scripts/ref/v2_clients.py's report: by client, what
// each call gave.
type clientsReport map[string]map[string]json.RawMessage

// get decodes what a client's call gave into v.
func (r clientsReport) get(t *testing.T, client, call string, v any) {
	t.Helper()
	raw, ok := r[client][call]
	require.True(t, ok, "%s: no %s in the report", client, call)
	require.NoError(t, json.Unmarshal(raw, v), "%s %s: %s", client, call, raw)
}

// flag is what a client's call reported as true or false.
func (r clientsReport) flag(t *testing.T, client, call string) bool {
	t.Helper()
	var b bool
	r.get(t, client, call, &b)
	return b
}

// The v2 clients users have, tritonclient[http] and KServe's REST client,
// against the server: health, metadata, infer with the clients' defaults
// (binary tensor data) and with JSON, on the versioned and unversioned
// routes, async; then readiness while the server drains.
func TestV2Clients(t *testing.T) {
	fix, qs, want := fixtureAnswers(t, 3)
	s, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix}))
	req := map[string]any{"url": hs.URL, "model": "fix", "phase": "serving", "questions": []string{}, "contexts": []string{}}
	for _, q := range qs {
		req["questions"] = append(req["questions"].([]string), q.Question)
		req["contexts"] = append(req["contexts"].([]string), q.Context)
	}
	var rep clientsReport
	testutil.RunRef(t, "v2_clients.py", req, &rep)
	for _, call := range []string{"live", "ready", "model_ready", "model_version_ready"} {
		assert.True(t, rep.flag(t, "triton", call), "triton: %s", call)
	}
	assert.False(t, rep.flag(t, "triton", "model_version_2_ready"), "triton: version 2 is not ready")
	var meta map[string]any
	rep.get(t, "triton", "server_metadata", &meta)
	assert.Contains(t, meta["extensions"], "binary_tensor_data")
	rep.get(t, "triton", "model_metadata", &meta)
	assert.Equal(t, "fix", meta["name"])
	rep.get(t, "triton", "model_metadata_v1", &meta)
	assert.Equal(t, []any{"1"}, meta["versions"])
	var refused clientResult
	rep.get(t, "triton", "model_config", &refused)
	assert.Contains(t, refused.Error, "not supported: Triton's model configuration extension")

	result := func(client, way string) clientResult {
		t.Helper()
		var r clientResult
		rep.get(t, client, way, &r)
		return r
	}
	check := func(client, way string) {
		t.Helper()
		r := result(client, way)
		require.Empty(t, r.Error, "%s %s: %s", client, way, r.Error)
		require.Len(t, r.Answers, len(qs), "%s %s", client, way)
		for i, w := range want {
			assert.Equal(t, w[0].Answer, r.Answers[i], "%s %s: answer %d", client, way, i)
			assert.Equal(t, w[0].Start, r.Starts[i], "%s %s: start %d", client, way, i)
			assert.Equal(t, w[0].End, r.Ends[i], "%s %s: end %d", client, way, i)
			assert.InDelta(t, w[0].Score, r.Scores[i], 1e-4, "%s %s: score %d", client, way, i)
		}
	}
	for _, way := range []string{"infer_default", "infer_json", "infer_outputs_default", "infer_versioned", "infer_async", "infer_aio"} {
		check("triton", way)
	}
	assert.Equal(t, "t-1", result("triton", "infer_default").ID)
	assert.Equal(t, "aio-1", result("triton", "infer_aio").ID)
	assert.Equal(t, "1", result("triton", "infer_versioned").ModelVersion)
	assert.Contains(t, result("triton", "infer_version_2").Error, `unknown version "2"`)
	assert.Contains(t, result("triton", "infer_sequence").Error, "not supported: the request parameter sequence_end, sequence_id, sequence_start")
	for _, call := range []string{"live", "ready", "model_ready"} {
		assert.True(t, rep.flag(t, "kserve", call), "kserve: %s", call)
	}
	for _, way := range []string{"infer_json", "infer_binary", "infer_versioned"} {
		check("kserve", way)
		assert.Equal(t, "kserve-1", result("kserve", way).ID, way)
	}

	// Draining: readiness says so with the status codes the clients read.
	require.NoError(t, s.Shutdown(context.Background()))
	req["phase"] = "draining"
	var drain clientsReport
	testutil.RunRef(t, "v2_clients.py", req, &drain)
	for _, client := range []string{"triton", "kserve"} {
		assert.True(t, drain.flag(t, client, "live"), "%s: live while draining", client)
		assert.False(t, drain.flag(t, client, "ready"), "%s: not ready while draining", client)
		assert.False(t, drain.flag(t, client, "model_ready"), "%s: model not ready while draining", client)
	}
	assert.False(t, drain.flag(t, "triton", "model_version_ready"), "triton: version 1 not ready while draining")
	var status int
	var body map[string]string
	drain.get(t, "kserve", "ready_status", &status)
	drain.get(t, "kserve", "ready_body", &body)
	assert.Equal(t, 503, status)
	assert.Contains(t, body["error"], "shutting down")
}
