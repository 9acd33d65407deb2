package serve

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/peft"
)

// squad2Copy is the tiny fixture's adapter and a copy of it saved for SQuAD
// 2.0 with the given null_score_diff_threshold (loraqa_squad2.json).
func squad2Copy(t *testing.T, threshold float64) (plain, v2 string) {
	_, plain = tinyFixture(t)
	d, err := peft.OpenDir(plain)
	require.NoError(t, err)
	d.SQuAD2 = &peft.SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: threshold, ThresholdFrom: peft.ThresholdBestF1}
	v2 = filepath.Join(t.TempDir(), "v2")
	require.NoError(t, d.Write(v2))
	return plain, v2
}

// POST /v1/answer with an adapter saved for SQuAD 2.0 (loraqa_squad2.json)
// abstains explicitly: answer "", no_answer true, start and end -1, with
// the null score and the best span's; the same question to a plain adapter
// of the same server gets a span and the keys it always had.
func TestServeSQuAD2NoAnswer(t *testing.T) {
	adapter, v2 := squad2Copy(t, -1e6)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "plain", Dir: adapter}, NamedAdapter{Name: "v2", Dir: v2}))
	q := Query{Question: "who is the ceo of the company?", Context: "The revenue was $5 million in 2019."}

	for _, tc := range []struct {
		adapter string
		abstain bool
		keys    []string
	}{
		{"plain", false, []string{"answer", "score", "start", "end"}},
		{"v2", true, []string{"answer", "score", "start", "end", "no_answer", "null_score", "best_span_score"}},
	} {
		t.Run(tc.adapter, func(t *testing.T) {
			code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, tc.adapter, 2))
			require.Equal(t, http.StatusOK, code, "%s", b)
			r := decodeAnswer(t, b)
			assert.Equal(t, tc.adapter, r.Adapter)
			require.Len(t, r.Answers, 2)
			var raw struct {
				Answers []map[string]json.RawMessage `json:"answers"`
			}
			require.NoError(t, json.Unmarshal(b, &raw))
			var keys []string
			for k := range raw.Answers[0] {
				keys = append(keys, k)
			}
			assert.ElementsMatch(t, tc.keys, keys)
			a := r.Answers[0]
			assert.Equal(t, tc.abstain, a.NoAnswer)
			if tc.abstain {
				assert.Equal(t, "", a.Answer)
				assert.Equal(t, -1, a.Start)
				assert.Equal(t, -1, a.End)
				require.NotNil(t, a.NullScore)
				require.NotNil(t, a.BestSpanScore)
				assert.Greater(t, *a.NullScore-*a.BestSpanScore, -1e6)
			} else {
				assert.NotEmpty(t, a.Answer)
				assert.Nil(t, a.NullScore)
			}
			// The second answer is a span either way.
			assert.NotEmpty(t, r.Answers[1].Answer)
			assert.False(t, r.Answers[1].NoAnswer)
		})
	}
}

// GET /v1/adapters shows an adapter's SQuAD 2.0 threshold, and nothing of
// the kind for a plain adapter.
func TestServeListsSQuAD2Setting(t *testing.T) {
	adapter, v2 := squad2Copy(t, -1.25)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "plain", Dir: adapter}, NamedAdapter{Name: "v2", Dir: v2}))
	code, b, _ := getURL(t, hs.URL+pathAdapters)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var list struct {
		Adapters []map[string]json.RawMessage `json:"adapters"`
	}
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Adapters, 2)
	assert.NotContains(t, list.Adapters[0], "squad_v2")
	assert.JSONEq(t, `{"null_score_diff_threshold": -1.25}`, string(list.Adapters[1]["squad_v2"]))
}
