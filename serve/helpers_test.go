package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/engine"
	"github.com/loraqa/loraqa/internal/testutil"
)

// The tiny fixture's model takes 128 positions.
const tinyMaxSeq, tinyStride = 128, 32

func tinyFixture(t *testing.T) (base, adapter string) {
	dir := testutil.Fixture(t, "tiny-distilbert-qa")
	return filepath.Join(dir, "base"), filepath.Join(dir, "adapter")
}

// testOptions are what a test server loads (the engine's options) and
// what it accepts (Server).
type testOptions struct {
	engine.Options
	Server Options
}

// tinyServerOptions serve the tiny base with the given adapters on the CPU.
func tinyServerOptions(t *testing.T, adapters ...NamedAdapter) testOptions {
	base, _ := tinyFixture(t)
	o := testOptions{Options: engine.DefaultOptions(), Server: DefaultOptions()}
	o.Model, o.Device, o.Adapters = base, gotch.CPU, adapters
	o.Features.MaxSeqLength, o.Features.DocStride = tinyMaxSeq, tinyStride
	o.Server.Timeout = 20 * time.Second
	return o
}

// loadServer loads an engine as loraqa serve does (the server's metrics
// observing its worker) and makes a server over it.
func loadServer(ctx context.Context, o testOptions) (*Server, error) {
	if o.Server.Metrics == nil {
		o.Server.Metrics = NewMetrics()
	}
	eo := o.Options
	eo.Observer = o.Server.Metrics
	e, err := engine.Load(ctx, eo)
	if err != nil {
		return nil, err
	}
	s, err := New(e, o.Server)
	if err != nil {
		e.Close()
		return nil, err
	}
	return s, nil
}

// closeServer shuts the server down and frees its engine.
func closeServer(s *Server) error {
	err := s.Shutdown(context.Background())
	s.Engine().Close()
	return err
}

// startServer loads a server and serves it on a loopback httptest server.
func startServer(t *testing.T, o testOptions) (*Server, *httptest.Server) {
	t.Helper()
	s, err := loadServer(context.Background(), o)
	require.NoError(t, err)
	hs := httptest.NewServer(s) // 127.0.0.1, a free port
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, closeServer(s))
	})
	return s, hs
}

// tinyPredictor loads a predictor as `loraqa predict` does, with the tiny
// fixture's windows.
func tinyPredictor(t *testing.T, adapter string, merge bool) *engine.Engine {
	t.Helper()
	base, _ := tinyFixture(t)
	o := engine.DefaultOptions()
	o.Model, o.Adapters, o.Device, o.Merge = base, []engine.NamedAdapter{{Name: "adapter", Dir: adapter}}, gotch.CPU, merge
	o.Features.MaxSeqLength, o.Features.DocStride = tinyMaxSeq, tinyStride
	p, err := engine.Load(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// expectedAnswers are the predictor's answers to each query, one at a time
// (as predict runs them), k best.
func expectedAnswers(t *testing.T, p *engine.Engine, qs []Query, k int) [][]Answer {
	t.Helper()
	out := make([][]Answer, len(qs))
	for i, q := range qs {
		q.TopK = k
		rs, err := p.Predict(context.Background(), []Query{q})
		require.NoError(t, err)
		out[i] = rs[0].Answers
	}
	return out
}

// fixtureQueries is the tiny fixture's adapter directory and n test queries.
func fixtureQueries(t *testing.T, n int) (adapter string, qs []Query) {
	t.Helper()
	_, adapter = tinyFixture(t)
	return adapter, testQueries(t, n)
}

// fixtureAnswers is the tiny fixture's adapter directory, n test queries and
// the best answer of the unmerged adapter's predictor to each.
func fixtureAnswers(t *testing.T, n int) (adapter string, qs []Query, want [][]Answer) {
	t.Helper()
	adapter, qs = fixtureQueries(t, n)
	return adapter, qs, expectedAnswers(t, tinyPredictor(t, adapter, false), qs, 1)
}

// testQueries cuts n questions and contexts out of examples/sample-qa.txt, with
// context lengths from 40 to 3,000 characters (one to a dozen windows).
func testQueries(t *testing.T, n int) []Query {
	b, err := os.ReadFile(testutil.SampleQA(t))
	require.NoError(t, err)
	text := []rune(strings.ToValidUTF8(string(b), ""))
	var questions []string
	for _, line := range strings.Split(string(b), "\n") {
		if q, ok := strings.CutPrefix(line, "Q: "); ok {
			questions = append(questions, q)
		}
	}
	require.NotEmpty(t, questions)
	qs := make([]Query, n)
	for i := range qs {
		l := int(40 * math.Pow(3000.0/40, float64(i)/float64(max(n-1, 1))))
		off := (i * 7919) % (len(text) - l)
		qs[i] = Query{Question: questions[(i*31)%len(questions)], Context: string(text[off : off+l])}
	}
	return qs
}

func requestBody(t *testing.T, q Query, adapter string, k int) string {
	r := AnswerRequest{Question: q.Question, Context: q.Context}
	if adapter != "" {
		r.Adapter = &adapter
	}
	if k != 1 {
		r.TopK = &k
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return string(b)
}

// post sends a JSON body and returns the status, the body and the headers.
func post(t *testing.T, client *http.Client, url, body string) (int, []byte, http.Header) {
	t.Helper()
	return call(t, client, http.MethodPost, url, body, "", "Content-Type", "application/json")
}

func decodeAnswer(t *testing.T, b []byte) AnswerResponse {
	t.Helper()
	var r AnswerResponse
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r), "%s", b)
	return r
}
