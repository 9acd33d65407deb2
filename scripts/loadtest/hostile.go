package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// hostileReport is what `loadtest hostile` measured.
type hostileReport struct {
	QuietRequests   int            `json:"quiet_requests"`
	QuietWrong      int            `json:"quiet_wrong"`
	QuietP50MS      float64        `json:"quiet_p50_ms"`
	QuietP99MS      float64        `json:"quiet_p99_ms"`
	GoodRequests    int            `json:"good_requests"`
	GoodLost        int            `json:"good_lost"`  // no 200
	GoodWrong       int            `json:"good_wrong"` // 200 with another answer than predict's
	GoodP50MS       float64        `json:"good_p50_ms"`
	GoodP99MS       float64        `json:"good_p99_ms"`
	Hostile         map[string]int `json:"hostile"`            // requests sent, by kind
	HostileStatuses map[string]int `json:"hostile_statuses"`   // kind status -> count
	Unexpected      int            `json:"hostile_unexpected"` // hostile requests answered with another status than expected
	RSSBeforeKiB    int64          `json:"rss_before_kib"`
	RSSAfterKiB     int64          `json:"rss_after_kib"`
	FDsBefore       int            `json:"fds_before"`
	FDsAfter        int            `json:"fds_after"`
	Seconds         float64        `json:"seconds"`
	FirstProblem    string         `json:"first_problem,omitempty"`
}

// runHostile: a quiet run of good requests, then the same good requests for
// -duration alongside slow-header and slow-body clients, oversized bodies,
// malformed JSON, wrong tokens and adapter loads/unloads; it reports good
// answers lost or wrong (against predict's), latency against the quiet run,
// and the server's RSS and open file descriptors before and after.
func runHostile(args []string) error {
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	var w workload
	w.flags(fs, "expected.jsonl")
	quietN := fs.Int("quiet", 800, "good requests of the quiet run")
	duration := fs.Duration("duration", 60*time.Second, "how long the hostile phase lasts (at most 10m)")
	token := fs.String("token", "", "a valid bearer token (empty: the server has no auth)")
	admin := fs.String("admin-token", "", "an admin token, for the adapter loads and unloads (empty: none)")
	adapterPath := fs.String("adapter-path", "", "a directory under the server's --adapter-root to load and unload as \"hot\"")
	pid := fs.Int("pid", 0, "the server's process id, for RSS and file descriptors")
	maxBody := fs.Int("max-body", 1<<20, "the server's --max-body: oversized bodies are twice this")
	jsonOut := fs.String("json", "", "also write the report here")
	settle := fs.Duration("settle", 10*time.Second, "wait this long before reading RSS and fds, before and after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(w.url)
	if err != nil {
		return fmt.Errorf("hostile: -url: %w", err)
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && h != "localhost" {
		return fmt.Errorf("hostile: -url %s: this test only runs against loopback (127.0.0.1)", w.url)
	}
	if *duration <= 0 || *duration > 10*time.Minute || w.clients < 1 || *quietN < 1 {
		return fmt.Errorf("hostile: -duration must be in (0, 10m], -c and -quiet positive")
	}
	ins, bodies, exp, err := w.read("hostile")
	if err != nil {
		return err
	}
	if exp == nil {
		return fmt.Errorf("hostile: -expected is needed")
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: w.clients}}
	rep := hostileReport{Hostile: map[string]int{}, HostileStatuses: map[string]int{}}
	var mu sync.Mutex
	problem := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if rep.FirstProblem == "" {
			rep.FirstProblem = fmt.Sprintf(format, a...)
		}
	}
	// good sends good requests until stop says so; it returns the latencies
	// and counts what was lost or wrong.
	good := func(stop func(i int) bool) (lat []time.Duration, lost, wrong int) {
		var lmu sync.Mutex
		clients(w.clients, stop, func(i int) {
			k := i % len(ins)
			t0 := time.Now()
			got, err := post(client, w.url+"/v1/answer", bodies[k], *token)
			d := time.Since(t0)
			lmu.Lock()
			defer lmu.Unlock()
			lat = append(lat, d)
			switch {
			case err != nil:
				lost++
				problem("good request %d (input %d): %v", i, k, err)
			case !sameAnswer(got, exp[k]):
				wrong++
				problem("good request %d (input %d): got %s %s, want %s %s", i, k, got.Adapter, got.Answers, exp[k].Adapter, exp[k].Answers)
			}
		})
		return lat, lost, wrong
	}

	// Quiet: good requests alone; one adapter load and unload warms that path.
	if *adapterPath != "" && *admin != "" {
		if err := adapterCycle(client, w.url, *admin, *token, *adapterPath, ins[0]); err != nil {
			return fmt.Errorf("hostile: warm-up adapter load/unload: %w", err)
		}
	}
	qlat, qlost, qwrong := good(func(i int) bool { return i >= *quietN })
	rep.QuietRequests, rep.QuietWrong = len(qlat), qlost+qwrong
	rep.QuietP50MS, rep.QuietP99MS = pct(qlat, .50), pct(qlat, .99)
	client.CloseIdleConnections() // before and after alike: no client connection open
	if *pid > 0 {
		time.Sleep(*settle)
		rep.RSSBeforeKiB, _ = vmRSS(*pid)
		rep.FDsBefore = openFDs(*pid)
	}

	// Hostile.
	start := time.Now()
	deadline := start.Add(*duration)
	over := func() bool { return time.Now().After(deadline) }
	var wg sync.WaitGroup
	count := func(kind string, status int, want ...int) {
		mu.Lock()
		defer mu.Unlock()
		rep.Hostile[kind]++
		rep.HostileStatuses[fmt.Sprintf("%s %d", kind, status)]++
		if !slices.Contains(want, status) {
			rep.Unexpected++
			if rep.FirstProblem == "" {
				rep.FirstProblem = fmt.Sprintf("%s: status %d, want %v", kind, status, want)
			}
		}
	}
	hostile := func(n int, fn func()) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !over() {
					fn()
				}
			}()
		}
	}
	host := u.Host
	// Slow headers: a header line a byte a second, until the server hangs up.
	hostile(6, func() {
		slowConn(host, "POST /v1/answer HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", deadline, count, "slow-header")
	})
	// Slow bodies: full headers, then the body a byte a second.
	hostile(4, func() {
		head := fmt.Sprintf("POST /v1/answer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n", *token)
		slowConn(host, head, `{"question":"`+strings.Repeat("a", 399), deadline, count, "slow-body")
	})
	big := bytes.Repeat([]byte("x"), 2**maxBody)
	hostile(2, func() {
		code := send(client, "POST", w.url+"/v1/answer", big, *token)
		count("oversized", code, 413, -1) // -1: the server answered 413 and closed before the client had sent the body
	})
	malformed := [][]byte{[]byte(`{"question": "q", "context": `), []byte(`question=q&context=c`), []byte(`{"question":42,"context":"c"}`), []byte(`[{"question":"q"}]`), {0xff, 0xfe, 0x00}}
	var mi atomic.Int64
	hostile(2, func() {
		code := send(client, "POST", w.url+"/v1/answer", malformed[int(mi.Add(1))%len(malformed)], *token)
		count("malformed", code, 400)
	})
	if *token != "" {
		wrong := []string{"", "wrong-token-0123456789abcdef", *token + "x", (*token)[:len(*token)-1]}
		var wi atomic.Int64
		hostile(2, func() {
			code := send(client, "POST", w.url+"/v1/answer", bodies[0], wrong[int(wi.Add(1))%len(wrong)])
			count("wrong-token", code, 401)
		})
	}
	if *adapterPath != "" && *admin != "" {
		hostile(1, func() {
			body, _ := json.Marshal(map[string]string{"name": "hot", "path": *adapterPath})
			count("adapter-load", send(client, "POST", w.url+"/v1/adapters", body, *admin), 201)
			q := ins[0]
			q.Adapter = "hot"
			qb, _ := json.Marshal(q)
			count("hot-answer", send(client, "POST", w.url+"/v1/answer", qb, *token), 200)
			count("adapter-unload", send(client, "DELETE", w.url+"/v1/adapters/hot", nil, *admin), 200)
			body, _ = json.Marshal(map[string]string{"name": "evil", "path": "../../etc"})
			count("adapter-escape", send(client, "POST", w.url+"/v1/adapters", body, *admin), 400)
			time.Sleep(200 * time.Millisecond)
		})
	}
	glat, glost, gwrong := good(func(int) bool { return over() })
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.GoodRequests, rep.GoodLost, rep.GoodWrong = len(glat), glost, gwrong
	rep.GoodP50MS, rep.GoodP99MS = pct(glat, .50), pct(glat, .99)
	client.CloseIdleConnections()
	if *pid > 0 {
		time.Sleep(*settle) // the server closes the connections the clients left; Go returns freed heap to the OS
		rep.RSSAfterKiB, _ = vmRSS(*pid)
		rep.FDsAfter = openFDs(*pid)
	}

	fmt.Printf("quiet: %d good requests, %d lost or wrong, p50 %.1f ms, p99 %.1f ms\n", rep.QuietRequests, rep.QuietWrong, rep.QuietP50MS, rep.QuietP99MS)
	fmt.Printf("hostile (%.0f s): %d good requests, %d lost, %d wrong, p50 %.1f ms, p99 %.1f ms\n", rep.Seconds, rep.GoodRequests, rep.GoodLost, rep.GoodWrong, rep.GoodP50MS, rep.GoodP99MS)
	kinds := make([]string, 0, len(rep.HostileStatuses))
	for k := range rep.HostileStatuses {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Printf("  %-22s %d\n", k, rep.HostileStatuses[k])
	}
	fmt.Printf("hostile requests answered otherwise than expected: %d\n", rep.Unexpected)
	if *pid > 0 {
		fmt.Printf("RSS %d -> %d KiB (%+.2f%%), open fds %d -> %d\n", rep.RSSBeforeKiB, rep.RSSAfterKiB,
			100*float64(rep.RSSAfterKiB-rep.RSSBeforeKiB)/float64(max(rep.RSSBeforeKiB, 1)), rep.FDsBefore, rep.FDsAfter)
	}
	if rep.FirstProblem != "" {
		fmt.Println("first problem:", rep.FirstProblem)
	}
	if *jsonOut != "" {
		if err := atomicfile.WriteJSON(*jsonOut, rep); err != nil {
			return err
		}
	}
	if rep.QuietWrong+rep.GoodLost+rep.GoodWrong+rep.Unexpected > 0 {
		return fmt.Errorf("%d good answers lost or wrong, %d hostile requests answered otherwise than expected", rep.QuietWrong+rep.GoodLost+rep.GoodWrong, rep.Unexpected)
	}
	return nil
}

// adapterCycle loads the adapter at path as "hot", asks it a question and
// unloads it.
func adapterCycle(client *http.Client, base, admin, token, path string, q input) error {
	body, _ := json.Marshal(map[string]string{"name": "hot", "path": path})
	if code := send(client, "POST", base+"/v1/adapters", body, admin); code != 201 {
		return fmt.Errorf("load: status %d", code)
	}
	q.Adapter = "hot"
	qb, _ := json.Marshal(q)
	if code := send(client, "POST", base+"/v1/answer", qb, token); code != 200 {
		return fmt.Errorf("answer: status %d", code)
	}
	if code := send(client, "DELETE", base+"/v1/adapters/hot", nil, admin); code != 200 {
		return fmt.Errorf("unload: status %d", code)
	}
	return nil
}

// slowConn writes head, then tail a byte a second, and counts the status
// the server answers with (0: it closed the connection without one), when
// it stops waiting.
func slowConn(host, head, tail string, deadline time.Time, count func(string, int, ...int), kind string) {
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		count(kind, -1, 0, 400, 408)
		time.Sleep(time.Second)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline.Add(40 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		count(kind, 0, 0, 400, 408)
		return
	}
	for i := 0; i < len(tail) && time.Now().Before(deadline); i++ {
		if _, err := conn.Write([]byte{tail[i]}); err != nil {
			break
		}
		time.Sleep(time.Second)
	}
	// The server has timed the connection out (no status, or 408), or the
	// hostile phase is over.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 64)
	n, _ := conn.Read(b)
	status := 0
	if _, err := fmt.Sscanf(string(b[:n]), "HTTP/1.1 %d", &status); err != nil {
		status = 0
	}
	count(kind, status, 0, 400, 408)
}

// send makes one request and returns its status (-1: no reply).
func send(client *http.Client, method, url string, body []byte, token string) int {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return -1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func pct(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// openFDs counts /proc/PID/fd.
func openFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}
