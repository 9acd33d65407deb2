package sweep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Trial statuses, as results.csv shows them.
const (
	StatusDone        = "done"        // the adapter and its metrics.json were saved
	StatusFailed      = "failed"      // the train process failed in this run
	StatusInterrupted = "interrupted" // the sweep was stopped while the trial ran
	StatusIncomplete  = "incomplete"  // started by an earlier run, not finished
	StatusPending     = "pending"     // not started
)

// Outcome is what happened to a trial run by this process.
type Outcome struct {
	Status   string
	Err      error
	Duration time.Duration
}

// Summary is the result of Run or Report.
type Summary struct {
	Results                    []Result // ranked
	Skipped, Ran, Done, Failed int
	Interrupted                bool
}

// Run runs the unfinished trials (finished ones are skipped; one that left a
// checkpoint resumes from it), then writes the results. It returns an error
// when a trial failed or the sweep was interrupted, after writing the results
// of the others.
func (s *Sweep) Run(ctx context.Context) (*Summary, error) {
	if s.Opts.Exe == "" {
		return nil, errors.New("sweep: no loraqa executable to run the trials with")
	}
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return nil, fmt.Errorf("sweep directory: %w", err)
	}
	unlock, err := lockDir(s.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.writeTrialFiles(); err != nil {
		return nil, err
	}
	var todo []Trial
	for _, t := range s.Trials {
		if !t.Finished() {
			todo = append(todo, t)
		}
	}
	sum := &Summary{Skipped: len(s.Trials) - len(todo)}
	where := ""
	if len(s.Devices) > 0 {
		where = fmt.Sprintf(" on GPUs %s", joinInts(s.Devices))
	}
	s.logf("%d trials in %s: %d finished earlier (skipped), %d to run, %d at a time%s",
		len(s.Trials), s.Out, sum.Skipped, len(todo), min(s.Workers, max(len(todo), 1)), where)

	r := &runner{s: s, total: len(todo), outcomes: map[string]Outcome{}, running: map[string]*runningTrial{}, start: time.Now()}
	jobs := make(chan Trial)
	var wg sync.WaitGroup
	for w := 0; w < min(s.Workers, len(todo)); w++ {
		dev := -1
		if len(s.Devices) > 0 {
			dev = s.Devices[w]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				r.run(ctx, t, dev)
			}
		}()
	}
	stopBeat := r.heartbeat()
feed:
	for _, t := range todo {
		select {
		case jobs <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	stopBeat()

	sum.Interrupted = ctx.Err() != nil
	var failed []string
	for _, t := range todo {
		o, ok := r.outcomes[t.Name]
		if !ok {
			continue
		}
		sum.Ran++
		if o.Status == StatusFailed {
			failed = append(failed, t.Name)
		}
	}
	sum.Failed = len(failed)
	sum.Results = s.Collect(r.outcomes)
	for _, res := range sum.Results {
		if res.Status == StatusDone {
			sum.Done++
		}
	}
	if err := s.WriteReport(sum.Results); err != nil {
		return sum, err
	}
	s.logSummary(sum)
	switch {
	case sum.Interrupted:
		return sum, fmt.Errorf("sweep interrupted with %d of %d trials finished; run the same command again to finish the rest (stopped trials resume from their last checkpoint): %w",
			sum.Done, len(s.Trials), ctx.Err())
	case len(failed) > 0:
		return sum, fmt.Errorf("%d of %d trials failed (%s): read the end of their train.log, fix the cause, and run the same command again (finished trials are skipped)",
			len(failed), len(s.Trials), strings.Join(failed, ", "))
	}
	return sum, nil
}

// Report ranks the trials as they are on disk and writes the results without
// running anything (e.g. after the trials ran on a cluster).
func (s *Sweep) Report() (*Summary, error) {
	sum := &Summary{Results: s.Collect(nil)}
	for _, res := range sum.Results {
		if res.Status == StatusDone {
			sum.Done++
		}
	}
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return sum, fmt.Errorf("sweep directory: %w", err)
	}
	if err := s.WriteReport(sum.Results); err != nil {
		return sum, err
	}
	s.logSummary(sum)
	return sum, nil
}

func (s *Sweep) logf(format string, a ...any) {
	line := fmt.Sprintf("sweep: "+format+"\n", a...)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	io.WriteString(s.Opts.Log, line)
}

func (s *Sweep) logSummary(sum *Summary) {
	s.logf("%d of %d trials finished; results in %s and %s", sum.Done, len(s.Trials),
		filepath.Join(s.Out, "results.md"), filepath.Join(s.Out, "results.csv"))
	if len(sum.Results) > 0 && sum.Results[0].Status == StatusDone {
		b := sum.Results[0]
		s.logf("best: %s, F1 %.2f, exact match %.2f (%s); its config: %s", b.Trial.Name, b.F1, b.ExactMatch,
			s.Describe(b.Trial), filepath.Join(s.Out, "best_config.yaml"))
	}
}

type runningTrial struct {
	start time.Time
	where string
}

// runner is the shared state of one Run's workers.
type runner struct {
	s        *Sweep
	total    int
	mu       sync.Mutex
	started  int
	finished int
	spent    time.Duration
	outcomes map[string]Outcome
	running  map[string]*runningTrial
	start    time.Time
}

func (r *runner) run(ctx context.Context, t Trial, dev int) {
	s := r.s
	if ctx.Err() != nil {
		return
	}
	where := "this machine"
	if dev >= 0 {
		where = "GPU " + strconv.Itoa(dev)
	}
	r.mu.Lock()
	r.started++
	n := r.started
	r.running[t.Name] = &runningTrial{start: time.Now(), where: where}
	r.mu.Unlock()

	resume := t.HasCheckpoint()
	how := "started"
	if resume {
		how = "resuming from its last checkpoint"
	}
	logPath := filepath.Join(t.Dir, "train.log")
	s.logf("[%d/%d] %s %s: %s on %s (log: %s)", n, r.total, t.Name, how, s.Describe(t), where, logPath)
	begin := time.Now()
	err := s.runTrial(ctx, t, dev, resume, logPath)
	o := Outcome{Status: StatusDone, Duration: time.Since(begin)}
	switch {
	case err == nil && !t.Finished():
		err = fmt.Errorf("train exited without saving %s", filepath.Join(t.AdapterDir(), "metrics.json"))
		o.Status = StatusFailed
	case err != nil && ctx.Err() != nil:
		o.Status = StatusInterrupted
	case err != nil:
		o.Status = StatusFailed
	}
	o.Err = err

	r.mu.Lock()
	delete(r.running, t.Name)
	r.outcomes[t.Name] = o
	r.finished++
	r.spent += o.Duration
	left := r.total - r.finished
	eta := ""
	if left > 0 && ctx.Err() == nil {
		per := r.spent / time.Duration(r.finished)
		waves := (left + s.Workers - 1) / s.Workers
		eta = fmt.Sprintf("; %d left, about %s to go", left, roundDur(per*time.Duration(waves)))
	}
	r.mu.Unlock()

	switch o.Status {
	case StatusDone:
		m := readMetrics(t)
		s.logf("[%d/%d] %s done in %s: F1 %.2f, exact match %.2f%s", n, r.total, t.Name, roundDur(o.Duration), m.F1, m.ExactMatch, eta)
	case StatusInterrupted:
		s.logf("%s stopped after %s (the sweep was interrupted)", t.Name, roundDur(o.Duration))
	default:
		s.logf("[%d/%d] %s FAILED after %s: %v%s", n, r.total, t.Name, roundDur(o.Duration), err, eta)
		s.logf("  full log: %s", logPath)
	}
}

// runTrial runs one `loraqa train` child with its output in logPath.
func (s *Sweep) runTrial(ctx context.Context, t Trial, dev int, resume bool, logPath string) error {
	if !resume {
		// Leftovers of an attempt that stopped before its first checkpoint.
		for _, d := range []string{t.RunDir(), t.AdapterDir()} {
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("clearing %s: %w", d, err)
			}
		}
	}
	args := s.TrainArgs(t)
	env := os.Environ()
	if dev >= 0 {
		args = append(args, "--set", "device=cuda:0")
		env = append(env, "CUDA_VISIBLE_DEVICES="+strconv.Itoa(dev))
	}
	if resume {
		args = append(args, "--resume", "latest")
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("trial log: %w", err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== loraqa sweep %s: %s%s %s\n", time.Now().Format(time.RFC3339), cudaPrefix(dev), s.Opts.Exe, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, s.Opts.Exe, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	// On interruption, let train save a checkpoint before it is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		if last := lastLogLine(logPath); last != "" {
			return fmt.Errorf("%w: %s", err, last)
		}
		return err
	}
	return nil
}

func cudaPrefix(dev int) string {
	if dev < 0 {
		return ""
	}
	return "CUDA_VISIBLE_DEVICES=" + strconv.Itoa(dev) + " "
}

// heartbeat reports the step of each running trial every Opts.Heartbeat.
func (r *runner) heartbeat() (stop func()) {
	every := r.s.Opts.Heartbeat
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r.mu.Lock()
			names := make([]string, 0, len(r.running))
			for n := range r.running {
				names = append(names, n)
			}
			sort.Strings(names)
			lines := make([]string, 0, len(names))
			for _, n := range names {
				rt := r.running[n]
				step := lastStep(filepath.Join(r.s.Out, n, "train.log"))
				if step != "" {
					step = ", " + step
				}
				lines = append(lines, fmt.Sprintf("%s running for %s on %s%s", n, roundDur(time.Since(rt.start)), rt.where, step))
			}
			finished, total := r.finished, r.total
			r.mu.Unlock()
			for _, l := range lines {
				r.s.logf("%s (%d/%d trials done)", l, finished, total)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

var stepRE = regexp.MustCompile(`step (\d+)/(\d+)`)

// lastStep finds the training progress ("step 12/38") last written to a log.
func lastStep(path string) string {
	tail := readTail(path, 8<<10)
	m := stepRE.FindAllSubmatch(tail, -1)
	if len(m) == 0 {
		return ""
	}
	last := m[len(m)-1]
	return fmt.Sprintf("step %s/%s", last[1], last[2])
}

// lastLogLine is the last line of a trial log that explains a failure: the
// last one mentioning an error, else the last non-empty one.
func lastLogLine(path string) string {
	tail := readTail(path, 16<<10)
	lines := strings.FieldsFunc(string(tail), func(r rune) bool { return r == '\n' || r == '\r' })
	var last string
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-20; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== loraqa sweep") {
			continue
		}
		if last == "" {
			last = l
		}
		if strings.Contains(strings.ToLower(l), "error") {
			last = l
			break
		}
	}
	if len(last) > 400 {
		last = last[:400] + "..."
	}
	return last
}

func readTail(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return nil
		}
	}
	b, _ := io.ReadAll(f)
	// Drop a partial UTF-8 sequence at the cut.
	return bytes.ToValidUTF8(b, nil)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}
