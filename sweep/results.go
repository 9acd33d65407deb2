package sweep

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/internal/atomicfile"
)

// Result is one trial's row of results.csv.
type Result struct {
	Trial  Trial
	Status string
	// Rank is 1 for the best finished trial; 0 for unfinished ones.
	Rank int
	// F1 is the trial's best eval F1; ExactMatch and EvalLoss are from the
	// same evaluation. HasEval is false when no evaluation was recorded.
	F1, ExactMatch, EvalLoss float64
	HasEval                  bool
	// Note says why a trial failed.
	Note string
}

// metrics is what a trial's files say about its evaluations.
type metrics struct {
	F1, ExactMatch, EvalLoss float64
	HasEval                  bool
}

type evalLine struct {
	Type       string   `json:"type"`
	F1         *float64 `json:"f1"`
	ExactMatch float64  `json:"exact_match"`
	EvalLoss   float64  `json:"eval_loss"`
}

// readMetrics reads the best evaluation of a trial: the adapter's
// metrics.json (best_f1) when it was saved, with exact match and eval loss
// from the evaluation of metrics.jsonl that reached that F1; for an
// unfinished trial, the best evaluation of metrics.jsonl so far.
func readMetrics(t Trial) metrics {
	var m metrics
	var best *evalLine
	if f, err := os.Open(filepath.Join(t.RunDir(), "metrics.jsonl")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e evalLine
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != "eval" || e.F1 == nil {
				continue
			}
			if best == nil || *e.F1 > *best.F1 {
				best = &e
			}
		}
		f.Close()
	}
	if best != nil {
		m = metrics{F1: *best.F1, ExactMatch: best.ExactMatch, EvalLoss: best.EvalLoss, HasEval: true}
	}
	b, err := os.ReadFile(filepath.Join(t.AdapterDir(), "metrics.json"))
	if err != nil {
		return m
	}
	var final struct {
		BestF1    *float64  `json:"best_f1"`
		FinalEval *evalLine `json:"final_eval"`
	}
	if json.Unmarshal(b, &final) != nil {
		return m
	}
	if final.BestF1 != nil && (!m.HasEval || *final.BestF1 != m.F1) {
		// metrics.jsonl is missing or disagrees: trust the saved adapter.
		m.F1, m.HasEval = *final.BestF1, true
		if fe := final.FinalEval; fe != nil && fe.F1 != nil && *fe.F1 == *final.BestF1 {
			m.ExactMatch, m.EvalLoss = fe.ExactMatch, fe.EvalLoss
		}
	} else if !m.HasEval && final.FinalEval != nil && final.FinalEval.F1 != nil {
		fe := final.FinalEval
		m = metrics{F1: *fe.F1, ExactMatch: fe.ExactMatch, EvalLoss: fe.EvalLoss, HasEval: true}
	}
	return m
}

// Collect reads every trial's status and metrics and ranks them: finished
// trials by best eval F1 (highest first, ties by name), then the others by
// name. outcomes are the trials run by this process, if any.
func (s *Sweep) Collect(outcomes map[string]Outcome) []Result {
	out := make([]Result, 0, len(s.Trials))
	for _, t := range s.Trials {
		r := Result{Trial: t}
		m := readMetrics(t)
		r.F1, r.ExactMatch, r.EvalLoss, r.HasEval = m.F1, m.ExactMatch, m.EvalLoss, m.HasEval
		o, ran := outcomes[t.Name]
		switch {
		case t.Finished():
			r.Status = StatusDone
		case ran:
			r.Status = o.Status
			if o.Err != nil {
				r.Note = o.Err.Error()
			}
		case dirExists(t.RunDir()):
			r.Status = StatusIncomplete
		default:
			r.Status = StatusPending
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ad, bd := a.Status == StatusDone, b.Status == StatusDone
		if ad != bd {
			return ad
		}
		if ad && a.F1 != b.F1 {
			return a.F1 > b.F1
		}
		return a.Trial.Name < b.Trial.Name
	})
	for i := range out {
		if out[i].Status == StatusDone {
			out[i].Rank = i + 1
		}
	}
	return out
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// WriteReport writes results.csv, results.md, f1_per_trial.png and, when a
// trial finished, best_config.yaml into the sweep directory.
func (s *Sweep) WriteReport(results []Result) error {
	csvData, err := s.resultsCSV(results)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.Out, "results.csv"), csvData); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.Out, "results.md"), s.resultsMarkdown(results)); err != nil {
		return err
	}
	png, err := plotF1(s.plotBars(results))
	if err != nil {
		return fmt.Errorf("f1_per_trial.png: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.Out, "f1_per_trial.png"), png); err != nil {
		return err
	}
	if len(results) == 0 || results[0].Status != StatusDone {
		return nil
	}
	y, err := s.BestConfig(results[0])
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.Out, "best_config.yaml"), y)
}

func fmtMetric(x float64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 4, 64)
}

func (s *Sweep) row(r Result) []string {
	rank := ""
	if r.Rank > 0 {
		rank = strconv.Itoa(r.Rank)
	}
	row := []string{rank, r.Trial.Name}
	row = append(row, r.Trial.Values...)
	return append(row, fmtMetric(r.ExactMatch, r.HasEval), fmtMetric(r.F1, r.HasEval), fmtMetric(r.EvalLoss, r.HasEval), r.Status)
}

func (s *Sweep) header() []string {
	h := []string{"rank", "trial"}
	h = append(h, s.Grid.Keys()...)
	return append(h, "exact_match", "f1", "eval_loss", "status")
}

func (s *Sweep) resultsCSV(results []Result) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(s.header()); err != nil {
		return nil, fmt.Errorf("results.csv: %w", err)
	}
	for _, r := range results {
		if err := w.Write(s.row(r)); err != nil {
			return nil, fmt.Errorf("results.csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("results.csv: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *Sweep) resultsMarkdown(results []Result) []byte {
	var b strings.Builder
	done := 0
	for _, r := range results {
		if r.Status == StatusDone {
			done++
		}
	}
	fmt.Fprintf(&b, "# Sweep results\n\n%d of %d trials finished, ranked by best eval F1. Grid: %s.\n", done, len(results), s.gridSummary())
	if s.ConfigFile != "" {
		fmt.Fprintf(&b, "Base config: `%s`", s.ConfigFile)
		if len(s.Opts.Sets) > 0 {
			fmt.Fprintf(&b, " with `--set %s`", strings.Join(s.Opts.Sets, " --set "))
		}
		b.WriteString(".\n")
	}
	if len(results) > 0 && results[0].Status == StatusDone {
		best := results[0]
		fmt.Fprintf(&b, "\n**Best: %s** (%s): F1 %.2f, exact match %.2f. Its config: `best_config.yaml`; its adapter: `%s`.\n",
			best.Trial.Name, s.Describe(best.Trial), best.F1, best.ExactMatch, best.Trial.AdapterDir())
	}
	b.WriteString("\n")
	esc := func(x string) string { return strings.ReplaceAll(x, "|", `\|`) }
	h := s.header()
	b.WriteString("| " + strings.Join(h, " | ") + " |\n|")
	for range h {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range results {
		cells := s.row(r)
		for i := range cells {
			cells[i] = esc(cells[i])
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	var notes []string
	for _, r := range results {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s %s: %s (log: `%s`)", r.Trial.Name, r.Status, r.Note, filepath.Join(r.Trial.Dir, "train.log")))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	b.WriteString("\n![F1 per trial](f1_per_trial.png)\n")
	return []byte(b.String())
}

func (s *Sweep) gridSummary() string {
	parts := make([]string, len(s.Grid))
	for i, p := range s.Grid {
		parts[i] = "`" + p.Key + "=" + strings.Join(p.Values, ",") + "`"
	}
	g := strings.Join(parts, " × ")
	if s.Opts.Random > 0 {
		g += fmt.Sprintf(", %d random combinations (seed %d)", len(s.Trials), s.Opts.RandomSeed)
	}
	return g
}

// BestConfig renders the resolved config of a trial: the base config with
// the trial's values (output paths as in the base config, so training with it
// does not overwrite the sweep), headed by a comment naming the trial.
func (s *Sweep) BestConfig(r Result) ([]byte, error) {
	sets := append(append([]string(nil), s.Opts.Sets...), s.Settings(r.Trial)...)
	cfg, err := config.Load(config.LoadOptions{File: s.ConfigFile, Sets: sets})
	if err != nil {
		return nil, fmt.Errorf("best config of %s: %w", r.Trial.Name, err)
	}
	y, err := cfg.YAML()
	if err != nil {
		return nil, fmt.Errorf("best config of %s: %w", r.Trial.Name, err)
	}
	head := fmt.Sprintf("# Best trial of the sweep in %s: %s (%s)\n# eval F1 %.4f, exact match %.4f; its adapter: %s\n# Train with it: loraqa train --config best_config.yaml\n",
		s.Out, r.Trial.Name, s.Describe(r.Trial), r.F1, r.ExactMatch, r.Trial.AdapterDir())
	return append([]byte(head), y...), nil
}
