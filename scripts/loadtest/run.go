package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// report is what a run measured.
type report struct {
	Requests   int              `json:"requests"`
	Clients    int              `json:"clients"`
	Distinct   int              `json:"distinct_inputs"`
	Errors     int              `json:"errors"`
	Mismatches int              `json:"mismatches"`
	NearMisses int              `json:"near_misses,omitempty"` // of the mismatches, same spans and scores within -tol
	P50MS      float64          `json:"p50_ms"`
	P90MS      float64          `json:"p90_ms"`
	P99MS      float64          `json:"p99_ms"`
	MaxMS      float64          `json:"max_ms"`
	Seconds    float64          `json:"seconds"`
	ReqPerSec  float64          `json:"req_per_s"`
	RSSKiB     map[string]int64 `json:"rss_kib,omitempty"` // after N requests
	FirstError string           `json:"first_error,omitempty"`
}

// workload is what `run` and `hostile` share: the server, the requests of
// `loadtest inputs`, the answers of `loadtest expect` and how many clients
// send them at once.
type workload struct {
	url, inputs, expected string
	clients               int
}

// flags registers the workload's flags on fs, with expected as -expected's
// default.
func (w *workload) flags(fs *flag.FlagSet, expected string) {
	fs.StringVar(&w.url, "url", "http://127.0.0.1:8080", "the server")
	fs.StringVar(&w.inputs, "inputs", "inputs.jsonl", "requests made by `loadtest inputs`")
	fs.StringVar(&w.expected, "expected", expected, "answers made by `loadtest expect` (run: empty does not check them)")
	fs.IntVar(&w.clients, "c", 16, "concurrent clients")
}

// read reads the requests (made into bodies) and, unless w.expected is "",
// the expected answers, one for each request; cmd names the subcommand in
// errors.
func (w workload) read(cmd string) (ins []input, bodies [][]byte, exp []expected, err error) {
	inputs, expFile := w.inputs, w.expected
	if ins, err = readJSONL[input](inputs); err != nil {
		return nil, nil, nil, err
	}
	if len(ins) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: %s holds no requests", cmd, inputs)
	}
	bodies = make([][]byte, len(ins))
	for i, in := range ins {
		if bodies[i], err = json.Marshal(in); err != nil {
			return nil, nil, nil, err
		}
	}
	if expFile == "" {
		return ins, bodies, nil, nil
	}
	if exp, err = readJSONL[expected](expFile); err != nil {
		return nil, nil, nil, err
	}
	if len(exp) != len(ins) {
		return nil, nil, nil, fmt.Errorf("%s: %d inputs but %d expected answers in %s", cmd, len(ins), len(exp), expFile)
	}
	return ins, bodies, exp, nil
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var w workload
	w.flags(fs, "")
	n := fs.Int("n", 2000, "requests in all (the inputs in turn)")
	pid := fs.Int("pid", 0, "the server's process id, to read its RSS (0: do not)")
	rssAt := fs.String("rss-at", "1000,10000", "read the RSS after these many requests")
	timeout := fs.Duration("timeout", 60*time.Second, "per-request client timeout")
	jsonOut := fs.String("json", "", "also write the report here")
	tol := fs.Float64("tol", 0, "also count answers equal but for scores within this relative tolerance (for serve --fuse)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || w.clients < 1 {
		return fmt.Errorf("run: -n and -c must be positive")
	}
	ins, bodies, exp, err := w.read("run")
	if err != nil {
		return err
	}
	marks := map[int64]string{}
	for _, f := range strings.Split(*rssAt, ",") {
		if k, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil && k > 0 {
			marks[k] = f
		}
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{MaxIdleConnsPerHost: w.clients, MaxConnsPerHost: w.clients}}
	rep := report{Requests: *n, Clients: w.clients, Distinct: len(ins), RSSKiB: map[string]int64{}}
	lat := make([]time.Duration, *n)
	var done atomic.Int64
	var mu sync.Mutex
	fail := func(mismatch bool, format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if mismatch {
			rep.Mismatches++
		} else {
			rep.Errors++
		}
		if rep.FirstError == "" {
			rep.FirstError = fmt.Sprintf(format, a...)
		}
	}
	start := time.Now()
	clients(w.clients, func(i int) bool { return i >= *n }, func(i int) {
		k := i % len(ins)
		t0 := time.Now()
		got, err := post(client, w.url+"/v1/answer", bodies[k], "")
		lat[i] = time.Since(t0)
		switch {
		case err != nil:
			fail(false, "request %d (input %d): %v", i, k, err)
		case exp != nil && !sameAnswer(got, exp[k]):
			if *tol > 0 && nearAnswer(got, exp[k], *tol) {
				mu.Lock()
				rep.NearMisses++
				mu.Unlock()
			}
			fail(true, "request %d (input %d): got adapter %q answers %s, want adapter %q answers %s", i, k, got.Adapter, got.Answers, exp[k].Adapter, exp[k].Answers)
		}
		if f, ok := marks[done.Add(1)]; ok && *pid > 0 {
			rss, err := vmRSS(*pid)
			mu.Lock()
			if err == nil {
				rep.RSSKiB[f] = rss
			}
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	rep.P50MS, rep.P90MS, rep.P99MS, rep.MaxMS = pct(lat, .50), pct(lat, .90), pct(lat, .99), float64(slices.Max(lat).Microseconds())/1000
	rep.Seconds = elapsed.Seconds()
	rep.ReqPerSec = float64(*n) / elapsed.Seconds()
	fmt.Printf("%d requests, %d clients, %d distinct inputs: %d errors, %d mismatches\n", rep.Requests, rep.Clients, rep.Distinct, rep.Errors, rep.Mismatches)
	if *tol > 0 {
		fmt.Printf("%d of the mismatches have the same spans and scores within %g\n", rep.NearMisses, *tol)
	}
	fmt.Printf("latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; %.1f req/s over %.1f s\n", rep.P50MS, rep.P90MS, rep.P99MS, rep.MaxMS, rep.ReqPerSec, rep.Seconds)
	for _, f := range strings.Split(*rssAt, ",") {
		if v, ok := rep.RSSKiB[f]; ok {
			fmt.Printf("server RSS after %s requests: %d KiB\n", f, v)
		}
	}
	if rep.FirstError != "" {
		fmt.Println("first problem:", rep.FirstError)
	}
	if *jsonOut != "" {
		if err := atomicfile.WriteJSON(*jsonOut, rep); err != nil {
			return err
		}
	}
	if rep.Errors+rep.Mismatches > 0 {
		return fmt.Errorf("%d errors and %d mismatches", rep.Errors, rep.Mismatches)
	}
	return nil
}

// clients runs c concurrent clients that take the request numbers 0, 1, 2,
// ... in turn and make request i with do, until stop reports true for the
// number a client takes; it returns when every client has stopped.
func clients(c int, stop func(i int) bool, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if stop(i) {
					return
				}
				do(i)
			}
		}()
	}
	wg.Wait()
}

type answerResponse struct {
	Answers json.RawMessage `json:"answers"`
	Adapter string          `json:"adapter"`
}

// post sends one answer request with the bearer token (none when "") and
// decodes the 200 reply; another status is an error with the body.
func post(client *http.Client, url string, body []byte, token string) (answerResponse, error) {
	var out answerResponse
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("decoding %q: %w", b, err)
	}
	return out, nil
}

// sameAnswer compares the answers byte for byte (both compact, as loraqa
// encodes them) and the adapter.
func sameAnswer(got answerResponse, want expected) bool {
	return got.Adapter == want.Adapter && bytes.Equal(compact(got.Answers), compact(want.Answers))
}

// nearAnswer: the same adapter, texts and offsets, scores within a relative tolerance.
func nearAnswer(got answerResponse, want expected, tol float64) bool {
	type ans struct {
		Answer     string
		Score      float64
		Start, End int
	}
	var g, w []ans
	if got.Adapter != want.Adapter || json.Unmarshal(got.Answers, &g) != nil || json.Unmarshal(want.Answers, &w) != nil || len(g) != len(w) {
		return false
	}
	for i := range g {
		if g[i].Answer != w[i].Answer || g[i].Start != w[i].Start || g[i].End != w[i].End || math.Abs(g[i].Score-w[i].Score) > tol*math.Abs(w[i].Score) {
			return false
		}
	}
	return true
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

// vmRSS reads VmRSS (KiB) from /proc/PID/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
