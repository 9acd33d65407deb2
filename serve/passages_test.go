package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/trained"
)

// POST /v1/answer (and each item of /v1/answer/batch) takes passages instead
// of a context: the answers are the engine's for that question over those
// passages, each naming its passage; a context and passages together, an
// empty list or an empty passage are 400s that say so.
func TestServePassages(t *testing.T) {
	adapter, qs := fixtureQueries(t, 4)
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

// The v2 infer route takes passages as a BYTES tensor [N, P] instead of
// context (shorter rows padded with ""), in JSON and as binary data: each
// question's answer is the engine's over its passages, the output passage
// naming where it came from; context and passages together, or the output
// passage without passages, are 400s.
func TestServeV2Passages(t *testing.T) {
	adapter, qs := fixtureQueries(t, 4)
	rows := [][]string{{qs[0].Context, qs[1].Context, qs[2].Context}, {qs[3].Context, "", ""}}
	p := tinyPredictor(t, adapter, false)
	var want []Answer
	for i, row := range rows {
		var ps []string
		for _, c := range row {
			if c != "" {
				ps = append(ps, c)
			}
		}
		r, err := p.Answer(context.Background(), Query{Question: qs[i].Question, Passages: ps})
		require.NoError(t, err)
		want = append(want, r.Answers[0])
	}
	s, _ := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: adapter}))
	flat := append(append([]string{}, rows[0]...), rows[1]...)
	questions, err := json.Marshal([]string{qs[0].Question, qs[1].Question})
	require.NoError(t, err)
	data, err := json.Marshal(flat)
	require.NoError(t, err)
	js := v2Body{json: `{"inputs":[{"name":"question","shape":[2],"datatype":"BYTES","data":` + string(questions) + `},` +
		`{"name":"passages","shape":[2,3],"datatype":"BYTES","data":` + string(data) + `}]}`}
	bin := v2Body{json: `{"inputs":[{"name":"question","shape":[2],"datatype":"BYTES","data":` + string(questions) + `},` +
		`{"name":"passages","shape":[2,3],"datatype":"BYTES","parameters":{"binary_data_size":` + fmt.Sprint(len(bytesTensor(flat...))) + `}}]}`,
		bin: bytesTensor(flat...)}
	for name, body := range map[string]v2Body{"json": js, "binary": bin} {
		rec := body.send(t, s, "/v2/models/fix/infer")
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", name, rec.Body.Bytes())
		got := map[string][]string{}
		for _, o := range v2JSONOutputs(t, rec) {
			for _, d := range o.Data {
				got[o.Name] = append(got[o.Name], string(d))
			}
		}
		require.Len(t, got["passage"], 2, name)
		for i, w := range want {
			answer, err := json.Marshal(w.Answer)
			require.NoError(t, err)
			assert.Equal(t, string(answer), got["answer"][i], name)
			assert.Equal(t, fmt.Sprint(*w.Passage), got["passage"][i], name)
			assert.Equal(t, fmt.Sprint(w.Start), got["start"][i], name)
		}
	}

	for _, c := range []struct{ body, want string }{
		{`{"inputs":[` + q1 + `,` + c1 + `,{"name":"passages","shape":[1,1],"datatype":"BYTES","data":["bob."]}]}`, "not both"},
		{`{"inputs":[` + q1 + `,` + c1 + `],"outputs":[{"name":"passage"}]}`, `output "passage" needs the input "passages"`},
		{`{"inputs":[` + q1 + `,{"name":"passages","shape":[3],"datatype":"BYTES","data":["a","b","c"]}]}`, "want [N, P]"},
		{`{"inputs":[` + q1 + `,{"name":"passages","shape":[1,2],"datatype":"BYTES","data":["",""]}]}`, `"passages" holds 0 passages`},
	} {
		rec := v2Body{json: c.body}.send(t, s, "/v2/models/fix/infer")
		assert.Equal(t, http.StatusBadRequest, rec.Code, c.body)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "%s", rec.Body.Bytes())
		assert.Contains(t, e.Error, c.want, c.body)
	}
}

// With SQuAD 2.0 and a threshold below every passage's null odds, a question
// over passages abstains on both protocols: /v1/answer's first answer is
// "" with no_answer, its passage and both scores; v2's outputs answer "",
// no_answer true and the passage.
func TestServePassagesAbstain(t *testing.T) {
	adapter, qs := fixtureQueries(t, 2)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: adapter})
	on, th := true, -1e6
	o.Version2WithNegative, o.NullScoreDiffThreshold = &on, &th
	s, hs := startServer(t, o)

	body, err := json.Marshal(AnswerRequest{Question: qs[0].Question, Passages: []string{qs[0].Context, qs[1].Context}})
	require.NoError(t, err)
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, string(body))
	require.Equal(t, http.StatusOK, code, "%s", b)
	got := decodeAnswer(t, b)
	require.Len(t, got.Answers, 1)
	a := got.Answers[0]
	assert.True(t, a.NoAnswer)
	assert.Equal(t, "", a.Answer)
	require.NotNil(t, a.Passage)
	require.NotNil(t, a.NullScore)
	require.NotNil(t, a.BestSpanScore)

	ps, err := json.Marshal([]string{qs[0].Context, qs[1].Context})
	require.NoError(t, err)
	q, err := json.Marshal([]string{qs[0].Question})
	require.NoError(t, err)
	rec := v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":` + string(q) + `},` +
		`{"name":"passages","shape":[1,2],"datatype":"BYTES","data":` + string(ps) + `}]}`}.send(t, s, "/v2/models/fix/infer")
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body.Bytes())
	assert.Contains(t, rec.Body.String(), `{"name":"answer","shape":[1],"datatype":"BYTES","data":[""]}`)
	assert.Contains(t, rec.Body.String(), `{"name":"no_answer","shape":[1],"datatype":"BOOL","data":[true]}`)
	assert.Contains(t, rec.Body.String(), `{"name":"passage","shape":[1],"datatype":"INT64","data":[`+fmt.Sprint(*a.Passage)+`]}`)
}

// An adapter that knows its data (internal/trained) answers over passages
// from the one that holds the answer, and abstains where none does, on
// /v1/answer and on v2.
func TestServePassagesTrained(t *testing.T) {
	base, adapter := trained.SQuAD2Adapter(t)
	o := tinyServerOptions(t, NamedAdapter{Name: "squad2", Dir: adapter})
	o.Model = base
	s, hs := startServer(t, o)
	ps := []string{trained.Distractor, trained.RevenuePassage}
	for _, c := range []struct {
		question, answer string
		abstain          bool
	}{{trained.Revenue, trained.RevenueAnswer, false}, {trained.Unanswerable, "", true}} {
		body, err := json.Marshal(AnswerRequest{Question: c.question, Passages: ps})
		require.NoError(t, err)
		code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, string(body))
		require.Equal(t, http.StatusOK, code, "%s", b)
		a := decodeAnswer(t, b).Answers[0]
		assert.Equal(t, c.answer, a.Answer, c.question)
		assert.Equal(t, c.abstain, a.NoAnswer, c.question)
		if !c.abstain {
			require.NotNil(t, a.Passage)
			assert.Equal(t, 1, *a.Passage)
		}

		q, err := json.Marshal([]string{c.question})
		require.NoError(t, err)
		data, err := json.Marshal(ps)
		require.NoError(t, err)
		rec := v2Body{json: `{"inputs":[{"name":"question","shape":[1],"datatype":"BYTES","data":` + string(q) + `},` +
			`{"name":"passages","shape":[1,2],"datatype":"BYTES","data":` + string(data) + `}]}`}.send(t, s, "/v2/models/squad2/infer")
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body.Bytes())
		answer, err := json.Marshal([]string{c.answer})
		require.NoError(t, err)
		assert.Contains(t, rec.Body.String(), `{"name":"answer","shape":[1],"datatype":"BYTES","data":`+string(answer)+`}`)
		assert.Contains(t, rec.Body.String(), `{"name":"no_answer","shape":[1],"datatype":"BOOL","data":[`+fmt.Sprint(c.abstain)+`]}`)
		if !c.abstain {
			assert.Contains(t, rec.Body.String(), `{"name":"passage","shape":[1],"datatype":"INT64","data":[1]}`)
		}
	}
}
