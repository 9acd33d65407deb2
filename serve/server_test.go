package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/adaptertest"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/torch"
)

// Concurrent requests, batched by the worker, answer exactly as the
// predictor does one query at a time (bit for bit: predict's answers).
func TestServeConcurrentMatchesPredictor(t *testing.T) {
	adapter, qs, want1 := fixtureAnswers(t, 24)
	want3 := expectedAnswers(t, tinyPredictor(t, adapter, false), qs, 3)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: adapter})
	o.MaxBatch, o.BatchWindow = 8, 5*time.Millisecond
	s, hs := startServer(t, o)

	const clients, rounds = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds*len(qs))
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for n := range qs {
					i := (n + 5*c + r) % len(qs)
					k := 1 + (c+r)%2*2 // 1 or 3
					code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[i], "", k))
					if code != http.StatusOK {
						errs <- fmt.Errorf("query %d: status %d: %s", i, code, b)
						continue
					}
					got, want := decodeAnswer(t, b), want1[i]
					if k == 3 {
						want = want3[i]
					}
					if got.Adapter != "fix" || !assert.ObjectsAreEqual(want, got.Answers) {
						errs <- fmt.Errorf("query %d top %d: got %s %+v, want %+v", i, k, got.Adapter, got.Answers, want)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The worker did batch: some cycles took more than one query.
	var m strings.Builder
	s.metrics.write(&m, s.gauges())
	assert.Contains(t, m.String(), fmt.Sprintf("loraqa_queries_total{adapter=\"fix\"} %d", clients*rounds*len(qs)))
	assert.Less(t, s.metrics.batches.n, uint64(clients*rounds*len(qs)), "every cycle ran a single query")

	// The batch endpoint gives the same answers, in order.
	items := make([]string, len(qs))
	for i, q := range qs {
		items[i] = requestBody(t, q, "fix", 1)
	}
	code, b, _ := post(t, hs.Client(), hs.URL+pathBatch, "["+strings.Join(items, ",")+"]")
	require.Equal(t, http.StatusOK, code, "%s", b)
	var br BatchResponse
	require.NoError(t, json.Unmarshal(b, &br))
	require.Len(t, br.Results, len(qs))
	for i, r := range br.Results {
		assert.Equal(t, want1[i], r.Answers, "batch item %d", i)
	}
}

// Two adapters over one base: each request gets the answers of a predictor
// loaded with its adapter alone, whatever the interleaving.
func TestServeTwoAdaptersShareBase(t *testing.T) {
	_, fix := tinyFixture(t)
	other := adaptertest.Scaled(t, fix, -4)
	qs := testQueries(t, 12)
	wantA := expectedAnswers(t, tinyPredictor(t, fix, false), qs, 2)
	wantB := expectedAnswers(t, tinyPredictor(t, other, false), qs, 2)
	differ := 0
	for i := range qs {
		if !assert.ObjectsAreEqual(wantA[i], wantB[i]) {
			differ++
		}
	}
	require.Positive(t, differ, "the two adapters answer alike: the test would prove nothing")

	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "a", Dir: fix}, NamedAdapter{Name: "b", Dir: other}))
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 2 * len(qs) {
				i := (n + c) % len(qs)
				name, want := "a", wantA[i]
				if (n+c)%2 == 1 {
					name, want = "b", wantB[i]
				}
				body := requestBody(t, qs[i], name, 2)
				if name == "a" && n%4 == 0 {
					body = strings.Replace(body, `,"adapter":"a"`, "", 1) // the default
				}
				code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, body)
				if !assert.Equal(t, http.StatusOK, code, "%s", b) {
					return
				}
				got := decodeAnswer(t, b)
				assert.Equal(t, name, got.Adapter)
				assert.Equal(t, want, got.Answers, "query %d adapter %s", i, name)
			}
		}()
	}
	wg.Wait()

	code, b, _ := getURL(t, hs.URL+pathAdapters)
	require.Equal(t, http.StatusOK, code)
	var info struct {
		Default  string `json:"default"`
		Adapters []struct {
			Name    string `json:"name"`
			R       int    `json:"r"`
			Default bool   `json:"default"`
		} `json:"adapters"`
	}
	require.NoError(t, json.Unmarshal(b, &info))
	assert.Equal(t, "a", info.Default)
	require.Len(t, info.Adapters, 2)
	assert.Equal(t, []string{"a", "b"}, []string{info.Adapters[0].Name, info.Adapters[1].Name})
	assert.True(t, info.Adapters[0].Default)
	assert.Equal(t, 4, info.Adapters[1].R)
}

// A merged adapter answers as predict --merge does.
func TestServeMerged(t *testing.T) {
	fix, qs := fixtureQueries(t, 6)
	want := expectedAnswers(t, tinyPredictor(t, fix, true), qs, 1)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Merge = true
	_, hs := startServer(t, o)
	for i, q := range qs {
		code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 1))
		require.Equal(t, http.StatusOK, code, "%s", b)
		assert.Equal(t, want[i], decodeAnswer(t, b).Answers, "query %d", i)
	}
	o.Adapters = append(o.Adapters, NamedAdapter{Name: "again", Dir: fix})
	_, err := loadServer(context.Background(), o)
	assert.ErrorContains(t, err, "folds one adapter")
}

// Fused forwards give the same spans; scores agree to float32 rounding.
func TestServeFused(t *testing.T) {
	fix, qs, want := fixtureAnswers(t, 16)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.Fuse, o.BatchWindow = true, 20*time.Millisecond
	s, hs := startServer(t, o)
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 1))
			if !assert.Equal(t, http.StatusOK, code, "%s", b) {
				return
			}
			got := decodeAnswer(t, b).Answers[0]
			w := want[i][0]
			assert.Equal(t, []any{w.Answer, w.Start, w.End}, []any{got.Answer, got.Start, got.End}, "query %d", i)
			assert.InEpsilon(t, w.Score, got.Score, 1e-4, "query %d", i)
		}()
	}
	wg.Wait()
	assert.Less(t, s.metrics.windows.n, uint64(len(qs)), "fused cycles should run several queries per forward")
}

// No tensor outlives a burst of requests, and closing the engine frees the model and
// every adapter.
func TestServeLiveTensorsSettle(t *testing.T) {
	_, fix := tinyFixture(t)
	other := adaptertest.Scaled(t, fix, 2)
	initial := torch.LiveTensors()
	s, err := loadServer(context.Background(), tinyServerOptions(t, NamedAdapter{Name: "a", Dir: fix}, NamedAdapter{Name: "b", Dir: other}))
	require.NoError(t, err)
	hs := httptest.NewServer(s)
	qs := testQueries(t, 10)
	code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[0], "", 1))
	require.Equal(t, http.StatusOK, code, "%s", b)
	before := torch.LiveTensors()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 10 {
				name := []string{"a", "b"}[(n+c)%2]
				code, b, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, qs[(n+c)%len(qs)], name, 2))
				assert.Equal(t, http.StatusOK, code, "%s", b)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for (s.inFlight.Load() != 0 || torch.LiveTensors() != before) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, before, torch.LiveTensors(), "tensors leaked by 80 requests")
	hs.Close()
	require.NoError(t, closeServer(s))
	assert.Equal(t, initial, torch.LiveTensors(), "Close left tensors of the model or adapters")
}

// The server's endpoints besides answers: health, metrics.
func TestServeHealthAndMetrics(t *testing.T) {
	_, fix := tinyFixture(t)
	_, hs := startServer(t, tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix}))
	code, b, _ := getURL(t, hs.URL+pathHealth)
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ok"}`, string(b))
	q := testQueries(t, 1)[0]
	for range 3 {
		code, _, _ := post(t, hs.Client(), hs.URL+pathAnswer, requestBody(t, q, "", 1))
		require.Equal(t, http.StatusOK, code)
	}
	code, _, _ = post(t, hs.Client(), hs.URL+pathAnswer, `{"question":`)
	require.Equal(t, http.StatusBadRequest, code)
	want := []string{
		`loraqa_http_requests_total{path="/v1/answer",code="200"} 3`,
		`loraqa_http_requests_total{path="/v1/answer",code="400"} 1`,
		`loraqa_http_request_duration_seconds_count{path="/v1/answer"} 4`,
		`loraqa_http_request_duration_seconds_bucket{path="/v1/answer",le="+Inf"} 4`,
		`loraqa_batch_queries_sum 3`,
		`loraqa_batch_queries_bucket{le="+Inf"} 3`,
		`loraqa_queries_total{adapter="fix"} 3`,
		`loraqa_queue_depth 0`,
		`# TYPE loraqa_batch_queries histogram`,
	}
	// A request is counted when its handler returns, which can be a moment
	// after the client has read the reply: scrape until the counts settle.
	var m string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, b, h := getURL(t, hs.URL+pathMetrics)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", h.Get("Content-Type"))
		m = string(b)
		if containsAll(m, want) || time.Now().After(deadline) {
			break
		}
	}
	for _, line := range want {
		assert.Contains(t, m, line+"\n")
	}
}

func containsAll(s string, lines []string) bool {
	for _, l := range lines {
		if !strings.Contains(s, l+"\n") {
			return false
		}
	}
	return true
}

// SIGTERM (ctx cancelled) closes the listener, finishes the requests in
// flight and the queued ones, and Run returns cleanly.
func TestServeGracefulShutdown(t *testing.T) {
	_, fix := tinyFixture(t)
	release, entered := make(chan struct{}), make(chan struct{}, 16)
	o := tinyServerOptions(t, NamedAdapter{Name: "fix", Dir: fix})
	o.MaxBatch, o.BatchWindow = 1, 0
	s, err := loadServer(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(faults.SetBeforeCycle(s.Engine(), func() { entered <- struct{}{}; <-release }))
	defer closeServer(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	qs := testQueries(t, 3)
	want := expectedAnswers(t, tinyPredictor(t, fix, false), qs, 1)
	type result struct {
		i    int
		code int
		body []byte
	}
	results := make(chan result, len(qs))
	client := &http.Client{Timeout: 20 * time.Second}
	for i, q := range qs {
		go func() {
			code, b, _ := post(t, client, url+pathAnswer, requestBody(t, q, "", 1))
			results <- result{i, code, b}
		}()
	}
	<-entered // one query in the worker, the others queued
	waitFor(t, func() bool { return s.gauges().queueDepth == len(qs)-1 })
	cancel()
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			return true // the listener is closed
		}
		c.Close()
		return false
	})
	close(release)
	for range qs {
		r := <-results
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
		assert.Equal(t, want[r.i], decodeAnswer(t, r.body).Answers)
	}
	select {
	case err := <-ran:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the shutdown")
	}
}

// getURL gets url with the default client and returns the status, the body
// and the headers.
func getURL(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	return call(t, http.DefaultClient, http.MethodGet, url, "", "")
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
