package train

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/internal/atomicfile"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// State is trainer_state.json: where training stands, and the evaluations so far.
type State struct {
	GlobalStep   int64   `json:"global_step"`
	Epoch        int     `json:"epoch"`          // completed epochs
	BatchInEpoch int     `json:"batch_in_epoch"` // batches of Epoch already done (mid-epoch checkpoints)
	BestF1       float64 `json:"best_f1"`        // F1 of the best checkpoint
	// BestMetric is metric_for_best_model's value at the best checkpoint
	// (HF's best_metric).
	BestMetric     float64      `json:"best_metric"`
	BestCheckpoint string       `json:"best_model_checkpoint"`
	LastCheckpoint string       `json:"last_checkpoint"`
	EvalsSinceBest int          `json:"evals_since_best"`
	Evals          []EvalRecord `json:"log_history"`
	// GradScaler is the fp16 loss scaler's state (absent without fp16).
	GradScaler *ScalerState `json:"grad_scaler,omitempty"`
	// RNG: dropout is reseeded before every batch from (seed, step, batch), so
	// a resumed run draws the same masks as an uninterrupted one.
	RNG string `json:"rng"`
}

// EvalRecord is one evaluation in the history.
type EvalRecord struct {
	Step  int64 `json:"step"`
	Epoch int   `json:"epoch"`
	EvalResult
}

// recordEval adds an evaluation and tracks the best one by metric (f1 and
// exact_match: higher is better; loss: lower is better, as HF's greater_is_better).
func (s *State) recordEval(step int64, epoch int, ev EvalResult, metric string) {
	s.Evals = append(s.Evals, EvalRecord{Step: step, Epoch: epoch, EvalResult: ev})
	v := ev.Metric(metric)
	better := v > s.BestMetric
	if metric == "loss" {
		better = v < s.BestMetric
	}
	if len(s.Evals) == 1 || better {
		s.BestF1, s.BestMetric = ev.F1, v
		s.BestCheckpoint = checkpointName(step) // set properly once saved
		s.EvalsSinceBest = 0
	} else {
		s.EvalsSinceBest++
	}
}

func checkpointName(step int64) string { return fmt.Sprintf("checkpoint-%d", step) }

// checkpoint writes OutputDir/checkpoint-<step>/ (adapter, optimizer state,
// trainer_state.json) into a temporary directory, then renames it into place,
// and prunes old checkpoints beyond SaveTotalLimit (the best one is kept).
func (t *Trainer) checkpoint() error {
	if t.Opt.OutputDir == "" {
		return nil
	}
	name := checkpointName(t.state.GlobalStep)
	final := filepath.Join(t.Opt.OutputDir, name)
	if err := os.MkdirAll(t.Opt.OutputDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(t.Opt.OutputDir, "."+name+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := t.Adapter.Save(tmp); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if err := t.saveOptimizer(filepath.Join(tmp, "optimizer.safetensors")); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	st := t.state
	if t.scaler != nil {
		sc := t.scaler.State()
		st.GradScaler = &sc
	}
	st.LastCheckpoint = final
	if st.BestCheckpoint == name {
		st.BestCheckpoint = final
	}
	st.RNG = fmt.Sprintf("reseeded before every batch from seed %d, step and batch", t.Opt.Seed)
	if err := atomicfile.WriteJSON(filepath.Join(tmp, "trainer_state.json"), st); err != nil {
		return err
	}
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	atomicfile.SyncDir(t.Opt.OutputDir)
	t.state = st
	if t.obs != nil {
		t.obs.Checkpoint(final)
	}
	return t.prune()
}

func (t *Trainer) saveOptimizer(path string) error {
	t.opt.syncStep()
	m, v := t.opt.State()
	var tensors []safetensors.Tensor
	for i, p := range t.Adapter.Params() {
		for _, x := range []struct {
			suffix string
			vals   []float32
		}{{".exp_avg", torch.ToFloat32(m[i])}, {".exp_avg_sq", torch.ToFloat32(v[i])}} {
			tensors = append(tensors, safetensors.Tensor{Name: p.Key + x.suffix, DType: safetensors.F32, Shape: p.Tensor.MustSize(), Data: safetensors.Float32sToBytes(x.vals)})
		}
	}
	return safetensors.Write(path, tensors, map[string]string{"step": strconv.FormatInt(t.opt.Step, 10)})
}

func (t *Trainer) prune() error {
	if t.Opt.SaveTotalLimit <= 0 {
		return nil
	}
	cks, err := Checkpoints(t.Opt.OutputDir)
	if err != nil {
		return err
	}
	keep := t.Opt.SaveTotalLimit
	for i := 0; i < len(cks)-keep; i++ {
		if cks[i] == t.state.BestCheckpoint {
			keep-- // the best one counts against the limit but is never removed
			continue
		}
		if err := os.RemoveAll(cks[i]); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoints lists dir's complete checkpoint-N directories, oldest first.
func Checkpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	type ck struct {
		step int64
		path string
	}
	var cks []ck
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "checkpoint-")
		if !e.IsDir() || !ok {
			continue
		}
		step, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "trainer_state.json")); err != nil {
			continue
		}
		cks = append(cks, ck{step, p})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// ErrNoCheckpoint is returned by Resume("latest") when OutputDir holds none.
var ErrNoCheckpoint = errors.New("no checkpoint to resume from")

// Resume restores the adapter, the optimizer state and the trainer state from a
// checkpoint directory, or from the latest one in OutputDir when path is "" or
// "latest". It returns the checkpoint used.
func (t *Trainer) Resume(path string) (string, error) {
	if path == "" || path == "latest" {
		cks, err := Checkpoints(t.Opt.OutputDir)
		if err != nil {
			return "", err
		}
		if len(cks) == 0 {
			return "", fmt.Errorf("%w in %s", ErrNoCheckpoint, t.Opt.OutputDir)
		}
		path = cks[len(cks)-1]
	}
	b, err := os.ReadFile(filepath.Join(path, "trainer_state.json"))
	if err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("resume: %s: %w", filepath.Join(path, "trainer_state.json"), err)
	}
	if err := t.loadAdapterFrom(path); err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	if err := t.init(); err != nil {
		return "", err
	}
	if err := t.loadOptimizer(filepath.Join(path, "optimizer.safetensors")); err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	if st.GradScaler != nil && t.scaler != nil {
		if err := t.scaler.SetState(*st.GradScaler); err != nil {
			return "", fmt.Errorf("resume: %s: %w", filepath.Join(path, "trainer_state.json"), err)
		}
	}
	t.state = st
	return path, nil
}

func (t *Trainer) loadAdapterFrom(dir string) error {
	d, err := peft.OpenDir(dir)
	if err != nil {
		return err
	}
	return d.SetWeights(t.Adapter)
}

func (t *Trainer) loadOptimizer(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	step, err := strconv.ParseInt(f.Metadata["step"], 10, 64)
	if err != nil {
		return fmt.Errorf("%s: metadata step %q: %w", path, f.Metadata["step"], err)
	}
	m, v := t.opt.State()
	for i, p := range t.Adapter.Params() {
		for _, x := range []struct {
			suffix string
			dst    *ts.Tensor
		}{{".exp_avg", m[i]}, {".exp_avg_sq", v[i]}} {
			vals, shape, err := f.Float32s(p.Key + x.suffix)
			if err != nil {
				return err
			}
			if !slices.Equal(shape, p.Tensor.MustSize()) {
				return fmt.Errorf("%s: %s has shape %v, want %v", path, p.Key+x.suffix, shape, p.Tensor.MustSize())
			}
			if err := torch.CopyFromFloat32(x.dst, vals, shape); err != nil {
				return err
			}
		}
	}
	t.opt.setStep(step)
	return nil
}

// metricsWriter appends one JSON object per line to metrics.jsonl.
type metricsWriter struct {
	f *os.File
}

// openMetrics opens OutputDir/metrics.jsonl, keeping only the lines of steps up
// to from (a resumed run rewrites what came after its checkpoint).
func openMetrics(dir string, from int64) (*metricsWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "metrics.jsonl")
	var kept []string
	if from > 0 {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var rec struct {
					Step int64 `json:"step"`
				}
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Step <= from {
					kept = append(kept, sc.Text())
				}
			}
			f.Close()
		}
	}
	// The kept lines replace the file atomically: a crash here leaves the
	// old history, not a truncated one. New lines are appended after them.
	var b strings.Builder
	for _, l := range kept {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := atomicfile.Write(path, []byte(b.String())); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return &metricsWriter{f: f}, nil
}

func (w *metricsWriter) log(rec map[string]any) {
	if w == nil {
		return
	}
	b, _ := json.Marshal(rec)
	w.f.Write(append(b, '\n'))
	w.f.Sync()
}

func (w *metricsWriter) Close() {
	if w != nil && w.f != nil {
		w.f.Close()
		w.f = nil
	}
}
