package serve

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loraqa/loraqa/engine"
)

// histogram is a Prometheus histogram: cumulative counts per upper bound.
type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i]++
	h.sum += v
	h.n++
}

func (h *histogram) write(w io.Writer, name, labels string) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s%sle=%q} %d\n", name, labels, sep, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %d\n", name, braces, strconv.FormatFloat(h.sum, 'g', -1, 64), name, braces, h.n)
}

var latencyBounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics are a server's counters, exposed at GET /metrics. They are an
// engine.Observer: given to engine.Load as Options.Observer, they count the
// model worker's cycles too. Make them with NewMetrics.
type Metrics struct {
	mu        sync.Mutex
	requests  map[[2]string]uint64 // path, status code
	latency   map[string]*histogram
	batches   *histogram        // queries per worker cycle
	windows   *histogram        // windows (features) per forward
	forward   *histogram        // seconds per worker cycle
	queries   map[string]uint64 // by adapter
	switches  uint64            // adapter attach/detach switches
	releases  uint64            // idle releases of freed memory
	startTime time.Time
}

// NewMetrics makes empty counters, started now.
func NewMetrics() *Metrics {
	return &Metrics{
		requests:  map[[2]string]uint64{},
		latency:   map[string]*histogram{},
		batches:   newHistogram(1, 2, 4, 8, 16, 32, 64, 128, 256),
		windows:   newHistogram(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
		forward:   newHistogram(latencyBounds...),
		queries:   map[string]uint64{},
		startTime: time.Now(),
	}
}

// request counts a request by its route pattern (bounded: unknown paths
// are "other").
func (m *Metrics) request(path string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{path, strconv.Itoa(code)}]++
	h := m.latency[path]
	if h == nil {
		h = newHistogram(latencyBounds...)
		m.latency[path] = h
	}
	h.observe(d.Seconds())
}

// cycleStart records a batching cycle's size before any of its queries is
// answered, so a client that has its answer sees its cycle counted.
func (m *Metrics) cycleStart(queries int) {
	m.mu.Lock()
	m.batches.observe(float64(queries))
	m.mu.Unlock()
}

// cycleEnd records the cycle's model time.
func (m *Metrics) cycleEnd(d time.Duration) {
	m.mu.Lock()
	m.forward.observe(d.Seconds())
	m.mu.Unlock()
}

func (m *Metrics) forwardWindows(n int, adapter string, queries int) {
	m.mu.Lock()
	m.windows.observe(float64(n))
	m.queries[adapter] += uint64(queries)
	m.mu.Unlock()
}

func (m *Metrics) adapterSwitch() {
	m.mu.Lock()
	m.switches++
	m.mu.Unlock()
}

// gauges are read when /metrics is scraped.
type gauges struct {
	queueDepth, queueCap, inFlight, liveTensors int
}

// write renders the metrics in Prometheus' text format (version 0.0.4).
func (m *Metrics) write(w io.Writer, g gauges) {
	var b bytes.Buffer
	m.mu.Lock()
	help(&b, "loraqa_http_requests_total", "counter", "HTTP requests by path and status code.")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "loraqa_http_requests_total{path=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	help(&b, "loraqa_http_request_duration_seconds", "histogram", "HTTP request latency by path.")
	for _, p := range sortedKeys(m.latency) {
		m.latency[p].write(&b, "loraqa_http_request_duration_seconds", fmt.Sprintf("path=%q", p))
	}
	help(&b, "loraqa_batch_queries", "histogram", "Queries answered per batching cycle of the model worker.")
	m.batches.write(&b, "loraqa_batch_queries", "")
	help(&b, "loraqa_batch_windows", "histogram", "Context windows per adapter group of a batching cycle.")
	m.windows.write(&b, "loraqa_batch_windows", "")
	help(&b, "loraqa_batch_duration_seconds", "histogram", "Model time per batching cycle.")
	m.forward.write(&b, "loraqa_batch_duration_seconds", "")
	help(&b, "loraqa_queries_total", "counter", "Queries run through the model, by adapter.")
	for _, a := range sortedKeys(m.queries) {
		fmt.Fprintf(&b, "loraqa_queries_total{adapter=%q} %d\n", a, m.queries[a])
	}
	help(&b, "loraqa_adapter_switches_total", "counter", "Times the worker detached one adapter and attached another.")
	fmt.Fprintf(&b, "loraqa_adapter_switches_total %d\n", m.switches)
	help(&b, "loraqa_memory_releases_total", "counter", "Times the idle model worker handed freed memory back to the OS.")
	fmt.Fprintf(&b, "loraqa_memory_releases_total %d\n", m.releases)
	start := m.startTime
	m.mu.Unlock()

	help(&b, "loraqa_queue_depth", "gauge", "Queries waiting for the model worker.")
	fmt.Fprintf(&b, "loraqa_queue_depth %d\n", g.queueDepth)
	help(&b, "loraqa_queue_capacity", "gauge", "Queries the queue holds before answering 429.")
	fmt.Fprintf(&b, "loraqa_queue_capacity %d\n", g.queueCap)
	help(&b, "loraqa_http_requests_in_flight", "gauge", "HTTP requests being served.")
	fmt.Fprintf(&b, "loraqa_http_requests_in_flight %d\n", g.inFlight)
	help(&b, "loraqa_live_tensors", "gauge", "LibTorch tensors alive in the process.")
	fmt.Fprintf(&b, "loraqa_live_tensors %d\n", g.liveTensors)
	help(&b, "process_start_time_seconds", "gauge", "Start time of the server since the Unix epoch.")
	fmt.Fprintf(&b, "process_start_time_seconds %d\n", start.Unix())
	if rss, ok := residentBytes(); ok {
		help(&b, "process_resident_memory_bytes", "gauge", "Resident set size.")
		fmt.Fprintf(&b, "process_resident_memory_bytes %d\n", rss)
	}
	_, _ = w.Write(b.Bytes())
}

func help(b *bytes.Buffer, name, typ, text string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// residentBytes reads the process' RSS from /proc (Linux only).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

var _ engine.Observer = (*Metrics)(nil)

// CycleStart is engine.Observer's: a batch of queries is about to run.
func (m *Metrics) CycleStart(queries int) { m.cycleStart(queries) }

// Forward is engine.Observer's: one forward pass over windows of queries.
func (m *Metrics) Forward(adapter string, windows, queries int) {
	m.forwardWindows(windows, adapter, queries)
}

// CycleEnd is engine.Observer's: the batch is answered.
func (m *Metrics) CycleEnd(d time.Duration) { m.cycleEnd(d) }

// AdapterSwitch is engine.Observer's: an adapter was attached or detached.
func (m *Metrics) AdapterSwitch() { m.adapterSwitch() }

// MemoryReleased is engine.Observer's: the idle worker handed freed memory
// back to the OS.
func (m *Metrics) MemoryReleased() {
	m.mu.Lock()
	m.releases++
	m.mu.Unlock()
}
