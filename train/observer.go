package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loraqa/loraqa/data"
)

// Observer hears a training run: its start, every optimizer step, the
// evaluations and the checkpoints (the way engine.Observer hears the model
// worker). Its methods are called on the training goroutine and should
// return quickly.
type Observer interface {
	// Start: the run goes from optimizer step from (a resumed run's) to
	// total. An error ends the run before it trains.
	Start(from, total int64) error
	// Step follows every optimizer step.
	Step(s Step)
	// Eval follows every evaluation.
	Eval(step int64, epoch int, ev EvalResult)
	// EpochEnd follows the last step of an epoch (0-based).
	EpochEnd(epoch int)
	// Checkpoint follows every checkpoint written, with its directory.
	Checkpoint(dir string)
	// Close ends the run (whatever its outcome).
	Close()
}

// Step is one optimizer step, as an Observer hears it.
type Step struct {
	Step  int64   // optimizer steps done
	Total int64   // optimizer steps of the run
	Epoch int     // 0-based
	At    float64 // epochs done, fractional (HF's "epoch")
	LR    float64 // the learning rate of the step
	// Logged: a logging step (logging_steps), which read back Loss (the
	// mean training loss since the last one) and GradNorm. On the other
	// steps Loss is the last one read and GradNorm is 0.
	Logged   bool
	Loss     float64
	GradNorm float64
}

// Observers is one Observer that passes every event to each of obs in
// turn (nil ones skipped).
func Observers(obs ...Observer) Observer {
	var all multi
	for _, o := range obs {
		if o != nil {
			all = append(all, o)
		}
	}
	return all
}

type multi []Observer

func (m multi) Start(from, total int64) error {
	for _, o := range m {
		if err := o.Start(from, total); err != nil {
			return err
		}
	}
	return nil
}

func (m multi) Step(s Step) {
	for _, o := range m {
		o.Step(s)
	}
}

func (m multi) Eval(step int64, epoch int, ev EvalResult) {
	for _, o := range m {
		o.Eval(step, epoch, ev)
	}
}

func (m multi) EpochEnd(epoch int) {
	for _, o := range m {
		o.EpochEnd(epoch)
	}
}

func (m multi) Checkpoint(dir string) {
	for _, o := range m {
		o.Checkpoint(dir)
	}
}

func (m multi) Close() {
	for _, o := range m {
		o.Close()
	}
}

// metricsLog is the Observer that writes OutputDir/metrics.jsonl: a "train"
// line per logging step, an "eval" line per evaluation.
type metricsLog struct {
	dir string
	w   *metricsWriter
}

func (l *metricsLog) Start(from, _ int64) error {
	w, err := openMetrics(l.dir, from)
	l.w = w
	return err
}

func (l *metricsLog) Step(s Step) {
	if s.Logged {
		l.w.log(map[string]any{"type": "train", "step": s.Step, "epoch": s.At, "loss": s.Loss, "learning_rate": s.LR, "grad_norm": s.GradNorm})
	}
}

func (l *metricsLog) Eval(step int64, epoch int, ev EvalResult) {
	rec := map[string]any{"type": "eval", "step": step, "epoch": epoch + 1, "eval_loss": ev.Loss, "exact_match": ev.ExactMatch, "f1": ev.F1, "n": ev.N}
	if ev.SQuADv2 != nil {
		rec["squad_v2"] = ev.SQuADv2
	}
	l.w.log(rec)
}

func (l *metricsLog) EpochEnd(int)      {}
func (l *metricsLog) Checkpoint(string) {}
func (l *metricsLog) Close()            { l.w.Close() }

// ProgressBar is an Observer that draws a one-line progress bar on w (a
// terminal): step, epoch, loss, learning rate, steps per second, ETA.
func ProgressBar(w io.Writer) Observer { return &progress{w: w} }

// progress is the bar, redrawn at most every 250 ms.
type progress struct {
	w           io.Writer
	total, from int64
	start, last time.Time
}

func (p *progress) Start(from, total int64) error {
	p.from, p.total, p.start = from, total, time.Now()
	return nil
}

func (p *progress) Step(s Step) {
	if p.w == nil || (time.Since(p.last) < 250*time.Millisecond && s.Step < p.total) {
		return
	}
	p.last = time.Now()
	done := float64(s.Step-p.from) / math.Max(1e-9, time.Since(p.start).Seconds())
	eta := time.Duration(float64(p.total-s.Step)/math.Max(done, 1e-9)) * time.Second
	const width = 24
	filled := min(width, max(0, int(float64(width)*float64(s.Step)/math.Max(1, float64(p.total)))))
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	fmt.Fprintf(p.w, "\r[%s] step %d/%d epoch %d loss %.4f lr %.2e %.2f it/s ETA %s   ", bar, s.Step, p.total, s.Epoch+1, s.Loss, s.LR, done, eta.Round(time.Second))
}

func (p *progress) EpochEnd(int) {
	if p.w != nil && !p.last.IsZero() {
		fmt.Fprintln(p.w)
		p.last = time.Time{}
	}
}

func (p *progress) Eval(int64, int, EvalResult) {}
func (p *progress) Checkpoint(string)           {}
func (p *progress) Close()                      {}

// jsonIndent is v as indented JSON with a final newline.
func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// MetricsRecord is one line of metrics.jsonl: Type "train" for a logging
// step (Loss, LR, GradNorm), "eval" for an evaluation (EvalLoss,
// ExactMatch, F1, N, and with SQuAD 2.0 SQuADv2: the official evaluation's
// keys under "squad_v2").
type MetricsRecord struct {
	Type       string  `json:"type"`
	Step       int64   `json:"step"`
	Epoch      float64 `json:"epoch"`
	Loss       float64 `json:"loss"`
	LR         float64 `json:"learning_rate"`
	GradNorm   float64 `json:"grad_norm"`
	EvalLoss   float64 `json:"eval_loss"`
	ExactMatch float64 `json:"exact_match"`
	F1         float64 `json:"f1"`
	N          int     `json:"n"`
	// SQuADv2 is EvalResult.SQuADv2 (nil without SQuAD 2.0).
	SQuADv2 *data.MetricsV2 `json:"squad_v2,omitempty"`
}

// ReadMetrics reads dir/metrics.jsonl, in order; a line that is not a
// record (a torn last line) is skipped.
func ReadMetrics(dir string) ([]MetricsRecord, error) {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []MetricsRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r MetricsRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}
