package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// POST /v1/answer (and each item of /v1/answer/batch) takes passages instead
// of a context: the answers are the engine's for that question over those
// passages, each naming its passage; a context and passages together, an
// empty list or an empty passage are 400s that say so.
func TestServePassages(t *testing.T) {
	_, adapter := tinyFixture(t)
	qs := testQueries(t, 4)
	passages := []string{qs[0].Context, qs[1].Context, qs[2].Context}
	want, err := tinyPredictor(t, adapter, false).Answer(context.Background(), Query{Question: qs[1].Question, Passages: passages, TopK: 4})
	require.NoError(t, err)
	require.Len(t, want.Answers, 4)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: adapter}))

	k := 4
	body, err := json.Marshal(AnswerRequest{Question: qs[1].Question, Passages: passages, TopK: &k})
	require.NoError(t, err)
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, string(body))
	require.Equal(t, http.StatusOK, code, "%s", b)
	got := decodeAnswer(t, b)
	assert.Equal(t, want.Answers, got.Answers)
	for _, a := range got.Answers {
		require.NotNil(t, a.Passage)
		assert.Equal(t, a.Answer, string([]rune(passages[*a.Passage])[a.Start:a.End]))
	}
	var raw struct {
		Answers []map[string]any `json:"answers"`
	}
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Contains(t, raw.Answers[0], "passage")

	// A context keeps its answers without a passage field.
	code, b, _ = post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[1], "", 1))
	require.Equal(t, http.StatusOK, code, "%s", b)
	raw.Answers = nil
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.NotContains(t, raw.Answers[0], "passage")

	batch := `[{"question": "who?", "context": "alice."}, ` + string(body) + `]`
	code, b, _ = post(t, hs.Client(), hs.URL+pathBatch, batch)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var br BatchResponse
	require.NoError(t, json.Unmarshal(b, &br))
	require.Len(t, br.Results, 2)
	assert.Nil(t, br.Results[0].Answers[0].Passage)
	assert.Equal(t, want.Answers, br.Results[1].Answers)

	for _, c := range []struct{ body, want string }{
		{`{"question": "who?", "context": "alice.", "passages": ["bob."]}`, `give "context" or "passages", not both`},
		{`{"question": "who?", "passages": []}`, `"passages" holds 0 passages`},
		{`{"question": "who?", "passages": ["bob.", "  "]}`, `passages[1] is empty`},
		{`{"question": "who?", "passages": "bob."}`, `wrong type for "passages"`},
		{`{"question": "who?"}`, `"context" is missing or empty (or give "passages")`},
		{`{"question": "who?", "passages": ["bob."], "context": null}`, `"context" is null: leave it out`},
		{`{"question": "who?", "context": "bob.", "passages": null}`, `"passages" is null: leave it out`},
		{`{"question": "who?", "context": "", "passages": ["bob."]}`, `give "context" or "passages", not both`},
	} {
		code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, c.body)
		assert.Equal(t, http.StatusBadRequest, code, c.body)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(b, &e), "%s", b)
		assert.Contains(t, e.Error, c.want, c.body)
	}
}
